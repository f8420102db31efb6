"""The shared tailer against a real temporary file: tail -F behaviour, cursors, fan-out."""

# The tests write the followed file from the event loop on purpose (a local tmp
# file, like a writer process would).
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from streams.logs.encoding import lines_to_sse
from streams.logs.fanout import Subscription
from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import NOTICE_TRUNCATED, find_backfill_start
from streams.logs.files.source import FileSource
from streams.logs.files.tailer import NOTICE_CURSOR_GONE, Tailer, active_tailers, get_tailer
from streams.logs.files.watch import SAFETY_POLL_SECONDS, Watcher
from streams.logs.follow import IdleEvent, LinesEvent, LogEvent, NoticeEvent, SkippedEvent
from streams.logs.follow import follow_log as follow_source
from tests.support.wait import async_wait_until

WAIT = 5.0


def follow_log(path: Path, **kwargs: Any) -> AsyncGenerator[LogEvent]:
    """The producer for the file source at ``path``."""
    return follow_source(FileSource("test", path), **kwargs)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


@contextlib.asynccontextmanager
async def following(path: Path, **kwargs: Any) -> AsyncIterator[tuple[Tailer, Subscription]]:
    """A ``Tailer`` of ``path`` and one subscription to it, both closed on the way out."""
    tailer = Tailer(path, **kwargs)
    subscription = tailer.subscribe()
    try:
        yield tailer, subscription
    finally:
        subscription.close()
        await tailer.wait_closed()


async def texts_until(subscription: Subscription, count: int) -> list[str]:
    """Read deliveries until ``count`` lines arrived (bounded wait)."""
    texts: list[str] = []
    async with asyncio.timeout(WAIT):
        while len(texts) < count:
            delivery = await subscription.next()
            texts.extend(line.text for batch in delivery.batches for line in batch.lines)
    return texts


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "app.log"


@pytest.mark.parametrize("watcher", ["inotify", "watchfiles", "poll"])
async def test_it_delivers_appended_lines_and_holds_a_partial_line(log: Path, watcher: Watcher):
    log.write_text("old line\n")
    async with following(log, watcher=watcher, queue_limit=100) as (tailer, sub):
        append(log, "first\nsecond part")
        assert await texts_until(sub, 1) == ["first"]
        append(log, " completed\n")
        assert await texts_until(sub, 1) == ["second part completed"]
        assert tailer.position == Cursor(log.stat().st_ino, log.stat().st_size)


@pytest.mark.parametrize("watcher", ["inotify", "watchfiles"])
async def test_a_watched_file_wakes_the_tailer_before_its_safety_poll(log: Path, watcher: Watcher):
    log.write_text("")
    async with following(log, watcher=watcher, queue_limit=100) as (tailer, sub):
        # Wait for the first step: the next poll is then a full interval away.
        await async_wait_until(lambda: tailer.watching and tailer.steps >= 1, WAIT)
        started = time.monotonic()
        append(log, "prompt\n")
        assert await texts_until(sub, 1) == ["prompt"]
        assert time.monotonic() - started < SAFETY_POLL_SECONDS / 2


async def test_it_follows_a_file_created_after_subscribing(log: Path):
    async with following(log, queue_limit=100) as (_tailer, sub):
        assert sub.start == Cursor.origin()
        append(log, "born\n")
        assert await texts_until(sub, 1) == ["born"]


async def test_it_follows_a_file_whose_directory_is_created_later(tmp_path: Path):
    log = tmp_path / "later" / "app.log"
    async with following(log, queue_limit=100) as (_tailer, sub):
        log.parent.mkdir()
        append(log, "in a new directory\n")
        assert await texts_until(sub, 1) == ["in a new directory"]


async def test_truncation_restarts_from_the_start_with_a_notice(log: Path):
    log.write_text("a long line before truncation\n")
    async with following(log, queue_limit=100) as (_tailer, sub):
        log.write_text("")
        append(log, "after\n")
        notices: list[str] = []
        texts: list[str] = []
        async with asyncio.timeout(WAIT):
            while not texts:
                delivery = await sub.next()
                for batch in delivery.batches:
                    if batch.notice:
                        notices.append(batch.notice)
                    texts.extend(line.text for line in batch.lines)
        assert texts == ["after"]
        assert any("truncated" in n for n in notices)


async def test_rotation_loses_and_repeats_nothing(log: Path):
    log.write_text("")
    async with following(log, queue_limit=10_000) as (tailer, sub):
        # A writer keeps its handle on the old file for a while after the rename,
        # as logging handlers do; those lines must still arrive, before the new file's.
        with log.open("a") as old:
            old.write("old 1\n")
            old.flush()
            log.rename(log.with_suffix(".log.1"))
            old.write("old 2 (after rename)\nold 3 unfinished")
            old.flush()
        append(log, "new 1\nnew 2\n")
        texts = await texts_until(sub, 5)
        assert texts == ["old 1", "old 2 (after rename)", "old 3 unfinished", "new 1", "new 2"]
        assert tailer.position.inode == log.stat().st_ino


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_writes_split_mid_line_and_rotations_lose_and_repeat_nothing(
    log: Path, seed: int
):
    rng = random.Random(seed)
    log.write_text("")
    async with following(log, queue_limit=100_000) as (tailer, sub):
        expected: list[str] = []
        received: list[str] = []
        pending = ""
        for round_ in range(4):
            for i in range(rng.randint(20, 60)):
                pending += f"round {round_} line {i} " + "x" * rng.randint(0, 300) + "\n"
                expected.append(pending.splitlines()[-1])
                # Write an arbitrary prefix: lines often end up split across writes.
                cut = rng.randint(0, len(pending))
                append(log, pending[:cut])
                pending = pending[cut:]
            append(log, pending)
            pending = ""
            # Rotate, the way a logging handler does: rename, then a new file.
            # (Once the tailer has caught up: like tail -F, it cannot see a file
            # that was created and rotated away between two of its reads.)
            current = Cursor(log.stat().st_ino, log.stat().st_size)
            await async_wait_until(lambda: tailer.position == current, WAIT)  # noqa: B023
            log.rename(log.with_name(f"app.log.{round_}"))
            log.write_text("")
        with contextlib.suppress(TimeoutError):  # then the comparison shows what is missing
            async with asyncio.timeout(WAIT):
                while len(received) < len(expected):
                    delivery = await sub.next()
                    received += [line.text for b in delivery.batches for line in b.lines]
        assert received == expected


async def test_overflow_gives_skipped_then_the_present(log: Path):
    log.write_text("")
    async with following(log, queue_limit=5) as (_tailer, sub):
        append(log, "".join(f"burst {i}\n" for i in range(4)))
        await async_wait_until(lambda: sub.queued_lines >= 4, WAIT)
        # The client is not reading; the next lines overflow its queue of 5.
        append(log, "".join(f"later {i}\n" for i in range(3)))
        await async_wait_until(lambda: sub.queued_lines == 3, WAIT)
        delivery = await sub.next()
        assert delivery.skipped == 4
        assert [line.text for b in delivery.batches for line in b.lines] == [
            "later 0",
            "later 1",
            "later 2",
        ]
        assert delivery.skipped_cursor is not None


async def test_a_burst_read_at_once_reaches_a_client_that_keeps_up_whole(log: Path):
    log.write_text("")
    async with following(log, queue_limit=5) as (_tailer, sub):
        append(log, "".join(f"burst {i}\n" for i in range(50)))  # one read, 10x the queue
        texts = await texts_until(sub, 50)
        assert texts == [f"burst {i}" for i in range(50)]


async def test_one_tailer_per_file_stopped_with_its_last_subscriber(log: Path):
    log.write_text("x\n")
    first = get_tailer(log)
    a = first.subscribe()
    b = get_tailer(log).subscribe()
    assert get_tailer(log) is first
    assert first.subscriber_count == 2
    a.close()
    assert first.subscriber_count == 1
    assert not first.stopped
    b.close()
    assert first.subscriber_count == 0
    assert first.stopped
    await first.wait_closed()
    assert first not in active_tailers()
    again = get_tailer(log).subscribe()
    assert again.tailer is not first
    again.close()


async def collect_until(events, predicate) -> list:
    got = []
    async with asyncio.timeout(WAIT):
        async for event in events:
            got.append(event)
            if predicate(got):
                break
    return got


def lines_of(events) -> list[str]:
    return [line.text for e in events if isinstance(e, LinesEvent) for line in e.lines]


async def test_backfill_then_live_without_gap_or_duplicate(log: Path):
    log.write_text("".join(f"line {i}\n" for i in range(10)) + "partial")
    events = follow_log(log, backfill=3)
    try:
        first = await anext(events)
        assert isinstance(first, LinesEvent)
        assert [line.text for line in first.lines] == ["line 7", "line 8", "line 9"]
        assert str(first.cursor) == f"{log.stat().st_ino}:{log.stat().st_size - len('partial')}"
        append(log, " done\nline 11\n")
        got = await collect_until(events, lambda g: len(lines_of(g)) >= 2)
        assert lines_of(got) == ["partial done", "line 11"]
    finally:
        await events.aclose()
    assert all(t.path != log for t in active_tailers())


def test_backfill_start_counts_lines_back_from_the_end(tmp_path: Path):
    path = tmp_path / "b.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert find_backfill_start(fd, 14, 1) == 8
        assert find_backfill_start(fd, 14, 2) == 4
        assert find_backfill_start(fd, 14, 3) == 0
        assert find_backfill_start(fd, 14, 10) == 0
        assert find_backfill_start(fd, 8, 1) == 4
    finally:
        os.close(fd)


def test_backfill_looks_back_a_bounded_number_of_bytes(tmp_path: Path):
    path = tmp_path / "b.log"
    path.write_bytes(b"a long first line\nx\ny\n")  # 18 + 2 + 2 bytes
    fd = os.open(path, os.O_RDONLY)
    try:
        # Asked for 3 lines; only the lines starting within the last 10 bytes come.
        assert find_backfill_start(fd, 22, 3, limit=10) == 18
    finally:
        os.close(fd)


async def test_backfill_zero_and_an_empty_file_still_give_a_cursor(log: Path):
    log.write_text("a\nb\n")
    events = follow_log(log, backfill=0)
    try:
        first = await anext(events)
        assert isinstance(first, LinesEvent)
        assert first.lines == ()
        assert first.cursor == Cursor(log.stat().st_ino, 4)
    finally:
        await events.aclose()


async def test_resume_after_a_cursor_gives_exactly_the_missed_lines(log: Path):
    log.write_text("one\ntwo\n")
    events = follow_log(log, backfill=10)
    first = await anext(events)
    await events.aclose()
    assert isinstance(first, LinesEvent)
    cursor = first.cursor
    append(log, "three\nfour\n")  # written while the client was away
    resumed = follow_log(log, after=cursor)
    try:
        opening = await anext(resumed)
        assert isinstance(opening, LinesEvent)
        assert [line.text for line in opening.lines] == ["three", "four"]
        append(log, "five\n")
        got = await collect_until(resumed, lambda g: len(lines_of(g)) >= 1)
        assert lines_of(got) == ["five"]
    finally:
        await resumed.aclose()


async def test_a_long_resume_comes_in_bounded_events_with_every_line_once(log: Path):
    texts = [f"INFO line {i} " + "y" * 300 for i in range(2500)]  # ~790 KB: several reads
    log.write_text("".join(t + "\n" for t in texts))
    after = Cursor(log.stat().st_ino, sum(len(t) + 1 for t in texts[:100]))
    events = follow_log(log, after=after)
    try:
        got: list[str] = []
        async with asyncio.timeout(WAIT):
            while True:
                event = await anext(events)
                assert isinstance(event, LinesEvent)
                assert len(event.lines) <= 2 * 1000
                got += [line.text for line in event.lines]
                if event.cursor == Cursor(after.inode, log.stat().st_size):
                    break
        assert got == texts[100:]
    finally:
        await events.aclose()


async def test_resume_from_a_cursor_ahead_of_the_tailer_skips_what_the_client_has(log: Path):
    # E.g. the client's last server process had read further than this one has.
    log.write_text("a\nb\n")
    keeper = get_tailer(log).subscribe()  # the tailer starts at the end: offset 4
    try:
        append(log, "c\n")  # not read by the tailer yet (no await since)
        ahead = Cursor(log.stat().st_ino, 6)
        events = follow_log(log, after=ahead)
        try:
            opening = await anext(events)
            assert isinstance(opening, LinesEvent)
            assert opening.lines == ()
            assert opening.cursor == ahead
            append(log, "d\n")
            got = await collect_until(events, lambda g: len(lines_of(g)) >= 1)
            assert lines_of(got) == ["d"]
        finally:
            await events.aclose()
    finally:
        keeper.close()


async def test_resume_after_a_rotated_away_cursor_restarts_with_a_notice(log: Path):
    log.write_text("old\n")
    gone = Cursor(log.stat().st_ino, 4)
    log.rename(log.with_suffix(".log.1"))
    log.write_text("new 1\nnew 2\n")
    assert log.stat().st_ino != gone.inode
    events = follow_log(log, after=gone)
    try:
        notice = await anext(events)
        assert isinstance(notice, NoticeEvent)
        opening = await anext(events)
        assert isinstance(opening, LinesEvent)
        assert [line.text for line in opening.lines] == ["new 1", "new 2"]
    finally:
        await events.aclose()


@pytest.mark.parametrize("ahead", [False, True], ids=["behind the tailer", "ahead of it"])
async def test_resume_after_a_cursor_into_a_truncated_and_regrown_file_restarts_with_a_notice(
    log: Path, ahead: bool
):
    """The cursor's offset is inside the new content but not after a line break: it is gone.

    Behind: this process's tailer has read the new content past the cursor.
    Ahead: the cursor came from another process that had read further in the
    old content than this tailer (which has not looked since: no await), so
    the subscription's start is stale as well.
    """
    log.write_text("".join(f"old line {i}\n" for i in range(10)))
    keeper = get_tailer(log).subscribe()  # starts at the end: offset 110
    try:
        if ahead:
            append(log, "".join(f"old line {i}\n" for i in range(10, 15)))
        client = Cursor(log.stat().st_ino, log.stat().st_size)
        new = [f"new line {i} " + "n" * 7 for i in range(12)]
        content = "".join(line + "\n" for line in new)
        with log.open("w") as f:
            f.write(content)
        assert log.stat().st_ino == client.inode
        assert content.encode()[client.offset - 1 : client.offset] != b"\n"
        if ahead:
            assert keeper.tailer.position.offset < client.offset <= log.stat().st_size
        else:
            await async_wait_until(
                lambda: keeper.tailer.position == Cursor(client.inode, len(content)),
                timeout=WAIT,
            )
        events = follow_log(log, after=client)
        try:
            got = await collect_until(events, lambda g: len(lines_of(g)) >= len(new))
            # Ahead, the subscription's own start is stale too: no history,
            # and the tailer's truncation notice says why.
            notice = NOTICE_TRUNCATED if ahead else NOTICE_CURSOR_GONE
            assert [e.text for e in got if isinstance(e, NoticeEvent)] == [notice]
            if ahead:  # the opening is empty, at the stale start
                assert got[0] == LinesEvent((), Cursor(client.inode, 110))
            assert lines_of(got) == new
        finally:
            await events.aclose()
    finally:
        keeper.close()


async def test_a_backfill_from_a_start_the_file_no_longer_holds_reads_nothing_twice(log: Path):
    """Truncated and regrown after the tailer's last look: the backfill would read new bytes."""
    log.write_text("".join(f"old line {i}\n" for i in range(10)))
    keeper = get_tailer(log).subscribe()
    try:
        new = [f"new line {i} " + "n" * 7 for i in range(12)]
        with log.open("w") as f:
            f.write("".join(line + "\n" for line in new))
        events = follow_log(log, backfill=5)  # no await since the rewrite: the start is stale
        try:
            got = await collect_until(events, lambda g: len(lines_of(g)) >= len(new))
            assert [e.text for e in got if isinstance(e, NoticeEvent)] == [NOTICE_TRUNCATED]
            assert lines_of(got) == new
        finally:
            await events.aclose()
    finally:
        keeper.close()


async def test_the_producer_reports_skipped_lines(log: Path):
    log.write_text("")
    events = follow_log(log, backfill=0)
    try:
        opening = await anext(events)
        assert isinstance(opening, LinesEvent)
        assert opening.lines == ()
        (tailer,) = [t for t in active_tailers() if t.path == log]
        (sub,) = tailer.subscriptions
        sub.limit = 2
        append(log, "a\nb\n")
        await async_wait_until(lambda: sub.queued_lines >= 2, WAIT)
        append(log, "c\nd\ne\n")  # more than the queue holds: a and b are dropped
        await async_wait_until(lambda: tailer.position.offset >= 10, WAIT)
        skipped = await anext(events)
        assert isinstance(skipped, SkippedEvent)
        assert skipped.count == 2
        present = await anext(events)
        assert isinstance(present, LinesEvent)
        assert [line.text for line in present.lines] == ["c", "d", "e"]
    finally:
        await events.aclose()


async def test_unfiltered_clients_share_one_encoding_per_batch(log: Path):
    log.write_text("")
    a, b = follow_log(log, backfill=0), follow_log(log, backfill=0)
    try:
        await anext(a), await anext(b)
        append(log, "ERROR shared\n")
        ea, eb = await anext(a), await anext(b)
        assert isinstance(ea, LinesEvent)
        assert isinstance(eb, LinesEvent)
        assert ea.batches is not None
        assert eb.batches is not None
        assert ea.batches[0] is eb.batches[0]
        ((sa,), (sb,)) = lines_to_sse(ea, "html"), lines_to_sse(eb, "html")
        assert sa.data is sb.data  # rendered once, reused
    finally:
        await a.aclose()
        await b.aclose()


def open_descriptors_of(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(path))
    return count


async def test_descriptors_of_the_file_are_closed_when_the_last_client_leaves(log: Path):
    log.write_text("x\n")
    events = follow_log(log, backfill=5)
    await anext(events)
    (tailer,) = [t for t in active_tailers() if t.path == log]
    assert open_descriptors_of(log) >= 1
    await events.aclose()
    await tailer.wait_closed()
    assert open_descriptors_of(log) == 0


async def test_an_idle_stream_beats_by_itself_and_a_beat_loses_no_line(log: Path):
    log.write_text("")
    events = follow_log(log, backfill=0, idle=0.02)
    try:
        opening = await anext(events)
        assert isinstance(opening, LinesEvent)
        assert isinstance(await anext(events), IdleEvent)
        assert isinstance(await anext(events), IdleEvent)
        append(log, "after two beats\n")
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await anext(events), LinesEvent):
                assert isinstance(event, IdleEvent)
        assert [line.text for line in event.lines] == ["after two beats"]
    finally:
        await events.aclose()
