"""A permalink (``?at=``) on a ``redis:`` source opens with 50 lines of context, as on a file.

Real path: the shipper writes the lines to a real Redis (the pass's own, or a
private one in the plain pass), the source counts back with ``XREVRANGE``,
and the ASGI stream resumes after the entry it found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.logs.redis.cursor import EntryId
from streams.logs.redis.stream import connect, raw_entries, stream_key
from streams.logs.sources import get_source
from tests.logs.redis.support import ship
from tests.support.asgi import StreamCall
from tests.support.sse import events_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LINES = [f"INFO line {n:04d}" for n in range(120)]


async def entry_ids(redis_url: str, name: str) -> list[str]:
    client = connect(redis_url)
    try:
        return [entry_id for entry_id, _ in raw_entries(await client.xrange(stream_key(name)))]
    finally:
        await client.aclose()


async def test_the_context_starts_fifty_entries_before_the_line_or_at_the_oldest(
    redis_url: str, stream: str, tmp_path: Path
):
    await ship(redis_url, stream, tmp_path / "app.log", LINES)
    ids = await entry_ids(redis_url, stream)
    assert len(ids) == len(LINES)
    source = get_source("web")
    # Resuming after the cursor returned gives lines 50..100: 50 before, then line 100.
    assert await source.context_start(EntryId.parse(ids[100]), 50) == EntryId.parse(ids[49])
    assert await source.context_start(EntryId.parse(ids[10]), 50) == EntryId.origin()


async def test_a_permalink_opens_with_its_context_then_follows(
    redis_url: str, stream: str, tmp_path: Path, staff_cookie: str
):
    await ship(redis_url, stream, tmp_path / "app.log", LINES)
    ids = await entry_ids(redis_url, stream)
    call = StreamCall("/streams/logs/web/", staff_cookie, query=f"format=json&at={ids[100]}")
    await call.start()
    assert call.status == 200
    body = await call.read_until(lambda b: b"INFO line 0100" in b and b.endswith(b"\n\n"))
    await call.hang_up()
    texts = [
        line["text"]
        for event in events_in(body)
        if event.event == "lines"
        for line in json.loads(event.data)["lines"]
    ]
    assert texts[: texts.index("INFO line 0100") + 1] == LINES[50:101]
