"""A permalink (``?at=<cursor>``): the lines before its line, the line, the rest, then live."""

# The tests write the followed file from the event loop on purpose.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.support.asgi import StreamCall
from tests.support.sse import events_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"test": path}
    path.write_text("".join(f"INFO line {i}\n" for i in range(200)))
    return path


def cursor_after(log: Path, number: int) -> str:
    """The cursor a search result gives for ``line <number>``: ``<inode>:<end>``."""
    end = sum(len(f"INFO line {i}\n") for i in range(number + 1))
    return f"{log.stat().st_ino}:{end}"


async def test_it_opens_with_fifty_lines_before_then_the_rest_then_live(
    log: Path, staff_cookie: str
):
    at = cursor_after(log, 120)
    request = StreamCall("/streams/logs/test/", staff_cookie, f"format=json&at={at}")
    await request.start()
    body = await request.read_until(lambda b: b"line 199" in b and b.endswith(b"\n\n"))
    texts = [
        line["text"]
        for event in events_in(body)
        if event.event == "lines"
        for line in json.loads(event.data)["lines"]
    ]
    assert texts == [f"INFO line {i}" for i in range(70, 200)]
    with log.open("a") as f:
        f.write("INFO live after the permalink\n")
    await request.read_until(lambda b: b"live after the permalink" in b)
    await request.hang_up()


async def test_near_the_start_it_opens_at_the_first_line(log: Path, staff_cookie: str):
    request = StreamCall(
        "/streams/logs/test/", staff_cookie, f"format=json&at={cursor_after(log, 3)}"
    )
    await request.start()
    body = await request.read_until(lambda b: b"line 199" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    first = json.loads(events_in(body)[0].data)["lines"][0]
    assert first["text"] == "INFO line 0"


async def test_a_reconnect_resumes_from_its_last_event_id_not_the_permalink(
    log: Path, staff_cookie: str
):
    last = cursor_after(log, 199)
    request = StreamCall(
        "/streams/logs/test/",
        staff_cookie,
        f"format=json&at={cursor_after(log, 120)}",
        headers={"Last-Event-ID": last},
    )
    await request.start()
    body = await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    assert json.loads(events_in(body)[0].data) == {"lines": []}


@pytest.mark.parametrize("url", ["/streams/logs/test/?at=nope", "/logs/test/?at=1:2:3"])
def test_a_malformed_at_is_a_400_naming_it(log: Path, staff_client: Client, url: str):
    response = staff_client.get(url)
    assert response.status_code == 400
    assert response.content.startswith(b"at: must be a cursor sent by this stream")


def test_the_page_passes_at_to_its_stream_and_marks_the_target(log: Path, staff_client: Client):
    at = cursor_after(log, 120)
    page = staff_client.get(f"/logs/test/?at={at}")
    assert page.status_code == 200
    assert f'data-at="{at}"'.encode() in page.content
    assert f"at={at.replace(':', '%3A')}".encode() in page.content
