"""A truncated file is seen as truncated even when it has regrown before the tailer looks.

Issue 9: a file truncated and at once rewritten past the old offset
(logrotate's ``copytruncate`` with a busy writer, or a process that reopens
its log with ``O_TRUNC`` and writes its banner) was not seen as truncated,
and the line written after the truncation arrived cut at the old offset.
These tests state the fix's contract: every line written after a
truncation arrives whole, once, in order. They drive the tailer through its
public surface only (``Tailer``, ``subscribe``, ``position``), so they stay
valid when the reader moves into its own module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from streams.logs.fanout import Subscription
from streams.logs.files.cursor import Cursor
from streams.logs.files.tailer import Tailer
from tests.logs.test_tailer import following
from tests.support.wait import async_wait_until

WAIT = 10.0
ROUNDS = 30


async def caught_up(tailer: Tailer, path: Path) -> None:
    """Wait until the tailer has read everything the file holds now."""

    def read_all() -> bool:
        stat = path.stat()
        return tailer.position == Cursor(stat.st_ino, stat.st_size)

    await async_wait_until(read_all, WAIT, "the tailer caught up", step=0.005)


async def receive(subscription: Subscription, count: int) -> list[str]:
    """Lines until ``count`` arrived, or what arrived within the wait (the diff shows the rest)."""
    texts: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT):
            while len(texts) < count:
                delivery = await subscription.next()
                texts.extend(line.text for batch in delivery.batches for line in batch.lines)
    return texts


@pytest.fixture(autouse=True)
def unbounded_bytes(settings: Any) -> None:
    """These tests read every line of bursts larger than a client's byte bound:
    they prove what the reader sends, not how the fan-out sheds a slow client."""
    settings.STREAMBOARD_QUEUE_BYTES = 1 << 30


def lines_for(round_: int, at_least_bytes: int) -> list[str]:
    """Lines of one round, together longer than ``at_least_bytes``."""
    lines: list[str] = []
    size = 0
    while size <= at_least_bytes:
        line = f"round {round_:02d} line {len(lines):04d} after truncation " + "z" * 40
        lines.append(line)
        size += len(line) + 1
    return lines


async def test_truncate_and_regrow_past_the_old_offset_loses_and_mangles_nothing(tmp_path: Path):
    log = tmp_path / "app.log"
    log.write_text("".join(f"before {i} " + "y" * 50 + "\n" for i in range(40)))
    async with following(log, queue_limit=100_000) as (tailer, subscription):
        expected: list[str] = []
        for round_ in range(ROUNDS):
            await caught_up(tailer, log)
            old_size = log.stat().st_size
            # O_TRUNC and a rewrite longer than before, between two looks of the tailer.
            lines = lines_for(round_, old_size + round_ * 7)
            with log.open("w") as f:
                f.write("".join(line + "\n" for line in lines))
            expected += lines
        assert await receive(subscription, len(expected)) == expected


async def test_truncate_and_a_shorter_rewrite_loses_and_mangles_nothing(tmp_path: Path):
    """The case that works today, kept working by the fix: the file is shorter than before."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"before {i} " + "y" * 50 + "\n" for i in range(400)))
    async with following(log, queue_limit=100_000) as (tailer, subscription):
        expected: list[str] = []
        for round_ in range(ROUNDS):
            await caught_up(tailer, log)
            lines = [f"round {round_:02d} short line {i}" for i in range(3)]
            with log.open("w") as f:
                f.write("".join(line + "\n" for line in lines))
            expected += lines
            # Grow it back well past the next round's rewrite, as a log does.
            await caught_up(tailer, log)
            padding = [f"round {round_:02d} padding {i} " + "p" * 60 for i in range(60)]
            with log.open("a") as f:
                f.write("".join(line + "\n" for line in padding))
            expected += padding
        assert await receive(subscription, len(expected)) == expected


async def test_copytruncate_with_a_writer_that_keeps_its_handle_loses_and_mangles_nothing(
    tmp_path: Path,
):
    """logrotate's ``copytruncate``: copy to app.log.1, truncate in place; the writer goes on.

    The writer holds one ``O_APPEND`` handle throughout, so after the
    truncation it writes from offset 0; some rounds it writes more than
    the file held before the tailer looks, some rounds less.
    """
    log = tmp_path / "app.log"
    log.write_text("")
    tailer = Tailer(log, queue_limit=100_000)
    subscription = tailer.subscribe()
    expected: list[str] = []
    writer = log.open("a", buffering=1)
    try:
        for round_ in range(ROUNDS):
            burst = [f"round {round_:02d} line {i:04d} " + "w" * (20 + i % 50) for i in range(80)]
            writer.write("".join(line + "\n" for line in burst))
            expected += burst
            await caught_up(tailer, log)
            shutil.copyfile(log, tmp_path / "app.log.1")
            os.truncate(log, 0)
            # The writer keeps writing at once: more than before in odd rounds.
            after = lines_for(round_, log_size_before(tmp_path) if round_ % 2 else 200)
            writer.write("".join(line + "\n" for line in after))
            expected += after
            await caught_up(tailer, log)
        assert await receive(subscription, len(expected)) == expected
    finally:
        writer.close()
        subscription.close()
        await tailer.wait_closed()


def log_size_before(tmp_path: Path) -> int:
    """The size of the file before its last truncation (its copy's)."""
    return (tmp_path / "app.log.1").stat().st_size


async def test_copytruncate_with_a_writer_thread_that_never_waits(tmp_path: Path):
    """The real race: a writer thread appends without pause while logrotate copies and truncates.

    ``copytruncate`` itself loses what is written between its copy and its
    truncation; the rotation here pauses the writer across those two steps
    (as if it fell between two writes) so that every line can be expected.
    What the tailer must do is read each line written after the truncation
    whole and once, however far the writer got before the tailer looked.
    """
    log = tmp_path / "app.log"
    log.write_text("")
    tailer = Tailer(log, queue_limit=1_000_000)
    subscription = tailer.subscribe()
    pause = threading.Lock()
    stop = threading.Event()
    written: list[str] = []

    def write() -> None:
        with log.open("a", buffering=1) as handle:
            number = 0
            while not stop.is_set() and number < 20_000:
                with pause:
                    line = f"writer line {number:06d} " + "v" * (number % 70)
                    handle.write(line + "\n")
                    written.append(line)
                number += 1

    thread = threading.Thread(target=write, name="copytruncate writer")
    thread.start()
    try:
        for _ in range(10):
            await async_wait_until(
                lambda: log.stat().st_size >= 32 * 1024 or not thread.is_alive(),
                WAIT,
                "32 KiB written since the last truncation",
                step=0.002,
            )
            with pause:
                await caught_up(tailer, log)
                shutil.copyfile(log, tmp_path / "app.log.1")
                os.truncate(log, 0)
        thread.join(WAIT)
        stop.set()
        received = await receive(subscription, len(written))
        mangled = [line for line in received if not line.startswith("writer line ")]
        assert mangled == []
        assert received == written
    finally:
        stop.set()
        thread.join(WAIT)
        subscription.close()
        await tailer.wait_closed()
