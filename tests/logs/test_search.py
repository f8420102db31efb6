"""The async search producer: events in order, slices in a thread, reading stops with the client."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.logs.history import SearchOptions, history_files
from streams.logs.patterns import LineMatcher
from streams.logs.search import DoneEvent, ProgressEvent, ResultEvent, SearchEvent, search_events
from streams.logs.timestamps import TimeRange
from tests.logs.test_history import BASE, log_lines, open_fds_to, write
from tests.support.wait import async_wait_until

WAIT = 10.0


@pytest.fixture
def source(tmp_path: Path) -> Path:
    write(tmp_path / "app.log.2.gz", log_lines(0, 2000))
    write(tmp_path / "app.log.1", log_lines(2000, 2000))
    write(tmp_path / "app.log", log_lines(4000, 2000))
    return tmp_path / "app.log"


async def collect(events) -> list[SearchEvent]:
    async with asyncio.timeout(WAIT):
        return [event async for event in events]


async def test_it_yields_results_newest_first_with_progress_then_done(source: Path):
    events = await collect(
        search_events(
            history_files(source),
            LineMatcher.build(q="payment=no"),
            limit=10_000,
            options=SearchOptions(block_bytes=8192, segment_bytes=8192),
            slice_results=50,
        )
    )
    found = [e.result for e in events if isinstance(e, ResultEvent)]
    assert [int(r.text.split()[4]) for r in found] == [i for i in range(5999, -1, -1) if i % 3 == 0]
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert len(progress) > 10
    assert [p.scanned for p in progress] == sorted(p.scanned for p in progress)
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.results == len(found)
    assert done.scanned == done.total == sum(f.size for f in history_files(source))
    assert not done.limited
    assert sum(isinstance(e, DoneEvent) for e in events) == 1


async def test_a_limit_stops_the_search_and_says_so(source: Path):
    events = await collect(
        search_events(history_files(source), LineMatcher.build(q="line"), limit=25)
    )
    assert sum(isinstance(e, ResultEvent) for e in events) == 25
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.limited
    assert done.results == 25
    assert done.scanned < done.total


async def test_time_bounds_and_filters_reach_the_history_search(source: Path):
    events = await collect(
        search_events(
            history_files(source),
            LineMatcher.build(re=r"line \d+ ", level="error"),
            TimeRange(BASE + 1900, BASE + 4100),
        )
    )
    found = [e.result.text.split()[4] for e in events if isinstance(e, ResultEvent)]
    assert found == [str(i) for i in range(4100, 1899, -10)]


async def test_a_consumer_that_stops_stops_the_reading_and_closes_the_files(tmp_path: Path):
    path = write(tmp_path / "app.log", log_lines(0, 200_000))
    events = search_events(
        history_files(path),
        LineMatcher.build(q="payment"),
        options=SearchOptions(block_bytes=65536),
        slice_results=10,
    )
    async with asyncio.timeout(WAIT):
        first = await anext(events)
        assert isinstance(first, ResultEvent)
        assert first.result.text.split()[4] == "199999"
        assert open_fds_to(tmp_path) == 1
        await events.aclose()
        await async_wait_until(lambda: not open_fds_to(tmp_path), WAIT, "the file closed")
    assert path.stat().st_size > 20 * 65536


def bytes_read_by_this_process() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


async def test_a_client_cancelled_mid_slice_stops_the_thread_and_closes_the_files(tmp_path: Path):
    path = write(tmp_path / "app.log", log_lines(0, 300_000))
    size = path.stat().st_size
    reading = threading.Event()
    release = threading.Event()
    blocks = itertools.count()

    class HeldMidSlice(LineMatcher):
        """A real matcher that holds the slice's thread at its tenth block until let go.

        So the cancel lands mid-slice however loaded the machine is: unheld, the
        whole search can end before the loop looks (it reads this file in 0.4 s).
        """

        def candidate_lines(self, block: bytes, start: int = 0) -> Iterator[tuple[int, int]]:
            if next(blocks) == 10:
                reading.set()
                release.wait(WAIT)
            return super().candidate_lines(block, start)

    # A filter that matches nothing, in small blocks: unstopped, the slice reads it all.
    events = search_events(
        history_files(path),
        HeldMidSlice.build(q="no such text"),
        options=SearchOptions(block_bytes=512),
        slice_seconds=30.0,
    )

    async def consume() -> None:
        async for _ in events:
            pass

    before = bytes_read_by_this_process()
    task = asyncio.create_task(consume())
    try:
        await async_wait_until(reading.is_set, WAIT, "the slice reading its tenth block")
        assert open_fds_to(tmp_path) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await events.aclose()
    finally:
        release.set()
    # The running slice sees the stop flag between blocks, returns, and the search closes.
    await async_wait_until(lambda: not open_fds_to(tmp_path), WAIT, "the file closed")
    read = bytes_read_by_this_process() - before
    assert read < size / 2, (read, size)


async def test_nothing_to_search_is_done_at_once(tmp_path: Path):
    events = await collect(search_events([], LineMatcher.build(q="x")))
    assert events[-1] == DoneEvent(0, 0, 0, False, events[-1].seconds)  # type: ignore[union-attr]
