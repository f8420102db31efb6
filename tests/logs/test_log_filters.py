"""Regular-expression filters on the live streams: re/exclude, 400s naming them, highlights."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from streams.logs.files.cursor import parse_texts
from streams.logs.follow import LineFilter
from streams.logs.patterns import LineMatcher
from tests.support.asgi import StreamCall
from tests.support.sse import events_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"test": path}
    path.write_text(
        "INFO order 17 paid\n"
        "ERROR order 18 <b>declined</b>\n"
        "INFO healthz ok\n"
        "WARNING order 19 retry\n"
    )
    return path


async def first_event(path: str, cookie: str, query: str) -> Any:
    request = StreamCall(path, cookie, query)
    await request.start()
    assert request.status == 200
    body = await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    return events_in(body)[0]


async def test_re_and_exclude_filter_the_live_stream(log: Path, staff_cookie: str):
    event = await first_event(
        "/streams/logs/test/", staff_cookie, "format=json&re=order%20\\d%2B&exclude=retry"
    )
    texts = [line["text"] for line in json.loads(event.data)["lines"]]
    assert texts == ["INFO order 17 paid", "ERROR order 18 <b>declined</b>"]


async def test_the_text_stream_takes_the_same_filters(log: Path, staff_cookie: str):
    request = StreamCall("/streams/logs/test.txt", staff_cookie, "re=^INFO&exclude=healthz")
    await request.start()
    body = await request.read_until(lambda b: b"paid\n" in b)
    await request.hang_up()
    assert body == b"INFO order 17 paid\n"


async def test_matches_are_highlighted_and_the_rest_escaped(log: Path, staff_cookie: str):
    event = await first_event("/streams/logs/test/", staff_cookie, "q=DECLINED&re=order%20\\d%2B")
    assert "<mark>order 18</mark> &lt;b&gt;<mark>declined</mark>&lt;/b&gt;" in event.data
    assert "<b>" not in event.data


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("re=(unclosed", b"re: not a valid regular expression"),
        ("exclude=a(%3F=b)", b"exclude: not a valid regular expression"),
        ("re=" + "a" * 501, b"re: longer than 500 characters"),
    ],
)
@pytest.mark.parametrize("path", ["/streams/logs/test/", "/streams/logs/test.txt"])
def test_an_invalid_pattern_is_a_400_naming_it(
    log: Path, staff_client: Client, path: str, query: str, message: bytes
):
    response = staff_client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert message in response.content


def test_a_pathological_pattern_answers_promptly():
    line_filter = LineFilter(LineMatcher.build(re="(a+)+$"))
    lines = parse_texts(["a" * 100_000 + "!"] * 20)
    started = time.perf_counter()
    assert line_filter.apply(lines) == []
    assert time.perf_counter() - started < 1.0


def test_the_page_presets_valid_patterns_and_drops_invalid_ones(log: Path, staff_client: Client):
    page = staff_client.get("/logs/test/?re=order&exclude=(bad")
    assert page.status_code == 200
    assert b'id="log-re" value="order"' in page.content
    assert b'id="log-exclude" value=""' in page.content
    assert b"re=order" in page.content
    assert b"exclude=" not in page.content.split(b"sse-connect=")[1].split(b">")[0]


async def test_a_live_line_is_filtered_as_it_arrives(log: Path, staff_cookie: str):
    request = StreamCall("/streams/logs/test/", staff_cookie, "backfill=0&format=json&re=^ERROR")
    await request.start()
    await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    with log.open("a") as f:
        f.write("INFO skipped\nERROR kept now\n")
    body = await asyncio.wait_for(request.read_until(lambda b: b"kept now" in b), 10)
    await request.hang_up()
    assert b"skipped" not in body
