"""The Redis source's producer without HTTP: ``follow_log`` over a real Redis stream.

Entries are added with ``XADD`` in the shapes ``ship_log`` writes, so each
case (backfill meeting live lines, per-host tracebacks, notices and gaps, an
unknown cursor) is exact; the shipper's own tests prove it writes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator

import pytest
import redis

from streams.logs.follow import LinesEvent, LogEvent, NoticeEvent, follow_log
from streams.logs.redis.cursor import EntryId
from streams.logs.redis.reader import NOTICE_UNKNOWN, active_readers, running_reader
from streams.logs.redis.source import RedisSource
from tests.logs.redis.support import RedisProcess, redis_process

KEY = "streamboard:log:web"
WAIT = 10.0


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


@pytest.fixture
def client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


@pytest.fixture
def source(redis_server: RedisProcess) -> RedisSource:
    return RedisSource("web", "web", redis_server.url)


def add(client: redis.Redis, host: str, text: str, kind: str = "line") -> str:
    return str(client.xadd(KEY, {"host": host, kind: text, "pos": "1:1"}))


async def next_event(events: AsyncGenerator[LogEvent]) -> LogEvent:
    async with asyncio.timeout(WAIT):
        return await anext(events)


async def close(events: AsyncGenerator[LogEvent], source: RedisSource) -> None:
    """End the stream; wait until its reader (the last client left) has closed its client."""
    reader = running_reader(source.url, source.stream)
    assert reader is not None
    await events.aclose()
    assert reader.stopped
    await reader.wait_closed()
    assert active_readers() == []


def texts(event: LogEvent) -> list[tuple[str, str, str]]:
    assert isinstance(event, LinesEvent), event
    return [(line.host, line.level, line.text) for line in event.lines]


async def test_the_backfill_meets_the_live_lines_and_the_reader_stops_with_its_last_client(
    source: RedisSource, client: redis.Redis
):
    ids = [add(client, "web-1", f"INFO line {i}") for i in range(5)]
    events = follow_log(source, backfill=3)
    first = await next_event(events)
    assert texts(first) == [("web-1", "info", f"INFO line {i}") for i in (2, 3, 4)]
    assert isinstance(first, LinesEvent)
    assert str(first.cursor) == ids[-1]  # settled: the exact resume point
    live = add(client, "web-2", "ERROR live")
    event = await next_event(events)
    assert isinstance(event, LinesEvent)
    assert texts(event) == [("web-2", "error", "ERROR live")]
    assert str(event.cursor) == live
    await close(events, source)


async def test_a_traceback_keeps_its_host_even_when_another_host_interleaves(
    source: RedisSource, client: redis.Redis
):
    add(client, "web-1", "ERROR boom")
    add(client, "web-2", "INFO unrelated")
    add(client, "web-1", "Traceback (most recent call last):")
    add(client, "web-1", '  File "app.py", line 1, in <module>')
    add(client, "web-2", "INFO still unrelated")
    events = follow_log(source, backfill=10)
    first = await next_event(events)
    assert isinstance(first, LinesEvent)
    continuation = [(line.host, line.continuation, line.level) for line in first.lines]
    assert continuation == [
        ("web-1", False, "error"),
        ("web-2", False, "info"),
        ("web-1", True, "error"),
        ("web-1", True, "error"),
        ("web-2", False, "info"),
    ]
    await close(events, source)


async def test_shipper_notices_are_live_notices_and_gaps_are_warning_lines(
    source: RedisSource, client: redis.Redis
):
    events = follow_log(source, backfill=0)
    assert texts(await next_event(events)) == []
    add(client, "web-1", "The file was rotated; following the new file from its start.", "notice")
    add(client, "web-1", "The file ... is gone: the rest of it was lost.", "gap")
    received: list[LogEvent] = []
    while len(received) < 2:
        received.append(await next_event(events))
    notice, lines = received
    assert isinstance(notice, NoticeEvent)
    assert notice.text.startswith("web-1: The file was rotated")
    assert texts(lines) == [("web-1", "warning", "The file ... is gone: the rest of it was lost.")]
    await close(events, source)


async def test_a_cursor_this_stream_never_had_resumes_from_the_oldest_with_a_notice(
    source: RedisSource, client: redis.Redis
):
    add(client, "web-1", "INFO kept")
    events = follow_log(source, after=EntryId.parse("99999999999999-0"))
    notice = await next_event(events)
    assert isinstance(notice, NoticeEvent)
    assert notice.text == NOTICE_UNKNOWN
    assert texts(await next_event(events)) == [("web-1", "info", "INFO kept")]
    await close(events, source)


def test_entry_ids_parse_and_order_like_redis() -> None:
    assert EntryId.parse("1700000000000-3") == EntryId(1700000000000, 3)
    assert EntryId.parse("5-10") > EntryId.parse("5-9") > EntryId.parse("4-99")
    assert EntryId(5, 1).after == "(5-1"
    for garbage in ("", "5", "5-", "-1", "5:1", "a-b", "1-2-3"):
        with pytest.raises(ValueError, match="not a stream entry id"):
            EntryId.parse(garbage)
