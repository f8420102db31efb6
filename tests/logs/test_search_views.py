"""The search page and its stream: 4xx before the first byte, results, redaction, hang-up."""

# The tests write the searched files from the event loop on purpose.
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.logs.test_history import log_lines, open_fds_to, write
from tests.support.asgi import StreamCall
from tests.support.personas import session_cookie
from tests.support.sse import events_in
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"test": path}
    write(tmp_path / "app.log.1.gz", log_lines(0, 50))
    lines = log_lines(50, 50)
    lines.append("2026-12-01 10:00:00,000 ERROR payment by bob@example.com declined")
    write(path, lines)
    return path


def test_the_page_shows_the_form_and_streams_only_a_valid_search(
    source: Path, staff_client: Client
):
    page = staff_client.get("/logs/test/search")
    assert page.status_code == 200
    assert b'name="re"' in page.content
    assert b"sse-connect" not in page.content
    searched = staff_client.get("/logs/test/search", {"q": "payment", "since": "2h"})
    assert searched.status_code == 200
    assert b'sse-connect="/streams/logs/test/search?q=payment&amp;since=2h"' in searched.content
    bad = staff_client.get("/logs/test/search", {"re": "(", "since": "soon"})
    assert bad.status_code == 400
    assert b"re: not a valid regular expression" in bad.content
    assert b"since: &#x27;soon&#x27; is not" in bad.content
    assert b"sse-connect" not in bad.content


def test_the_page_needs_staff_and_a_known_source(
    source: Path, anonymous_client: Client, staff_client: Client
):
    assert anonymous_client.get("/logs/test/search").status_code == 302
    assert staff_client.get("/logs/nope/search").status_code == 404


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"re": "(a"}, b"re: not a valid regular expression"),
        ({"exclude": "(?=x)"}, b"exclude: not a valid regular expression"),
        ({"since": "yesterday"}, b"since: 'yesterday' is not a duration"),
        ({"until": "2026-13-01"}, b"until: '2026-13-01' is not"),
        ({"since": "2026-12-02T15:00Z", "until": "2026-12-02T14:00Z"}, b"since: must not be later"),
        ({"limit": "0"}, b"limit: Ensure this value is greater than or equal to 1"),
        ({"level": "loud"}, b"level: Select a valid choice"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it_before_any_byte(
    source: Path, staff_client: Client, query: dict[str, str], message: bytes
):
    response = staff_client.get("/streams/logs/test/search", query)
    assert response.status_code == 400
    assert response.content.startswith(message), response.content


def test_the_stream_needs_staff_and_a_known_source(
    source: Path, plain_client: Client, staff_client: Client
):
    assert plain_client.get("/streams/logs/test/search").status_code == 403
    assert staff_client.get("/streams/logs/nope/search").status_code == 404


async def test_results_stream_newest_first_highlighted_and_redacted(
    source: Path, staff_cookie: str
):
    request = StreamCall("/streams/logs/test/search", staff_cookie, "q=PAYMENT")
    await request.start()
    assert request.status == 200
    assert request.headers["content-type"].startswith("text/event-stream")
    body = await request.read_until(lambda b: b"event: done" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    events = events_in(body)
    results = [e.data for e in events if e.event == "result"]
    assert len(results) == 101
    first = results[0]
    assert "<mark>payment</mark> by [REDACTED:email] declined" in first
    assert "bob@example.com" not in body.decode()
    assert f'href="/logs/test/?at={source.stat().st_ino}:' in first
    assert "line 99 " in results[1]
    assert "app.log.1.gz" in results[-1]
    assert 'href="' not in results[-1].split("result-text")[0]  # no permalink into a .gz
    assert any(e.event == "progress" for e in events)
    assert "101 results" in events[-1].data


async def test_a_user_with_the_permission_sees_lines_unredacted(source: Path, superuser: User):
    cookie = await asyncio.to_thread(session_cookie, superuser)
    request = StreamCall("/streams/logs/test/search", cookie, "q=declined")
    await request.start()
    body = await request.read_until(lambda b: b"event: done" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    assert "<mark>declined</mark>" in body.decode()
    assert "bob@example.com" in body.decode()


async def test_a_client_that_hangs_up_stops_the_search_and_its_reading(
    tmp_path: Path, settings: Any, staff_cookie: str
):
    path = write(tmp_path / "big.log", log_lines(0, 200_000))
    settings.STREAMBOARD_LOGS = {"big": path}
    request = StreamCall("/streams/logs/big/search", staff_cookie, "q=payment&limit=10000")
    await request.start()
    await request.read_until(lambda b: b"event: result" in b)
    await request.hang_up()
    await async_wait_until(lambda: not open_fds_to(tmp_path), 10, "the files closed")
