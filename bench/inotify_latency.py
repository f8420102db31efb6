#!/usr/bin/env python3
"""Wake-up latency of the tailer's inotify watcher against the libraries that offer one.

Latency here is the time from a writer's ``write()`` of a line to the moment
a subscriber of the tailer has it (``Subscription.next`` returned): the
watcher's wake-up plus the tailer's read step, which is the same code for
every variant. Variants, each a ``Watch`` given to ``Tailer(watcher=...)``:

* ``hand-written``: ``bench/inotify_ctypes.py`` (ctypes, the inotify fd
  registered with ``loop.add_reader``), what the tailer used before.
* ``inotify_simple``: its ``INotify`` fd registered with ``loop.add_reader``
  the same way, events read with ``read(timeout=0)`` (its documented read).
* ``adopted``: ``streams.logs.files.watch.InotifyWatch``, what the tailer uses
  now: ``inotify_simple`` with one ``os.read`` and its ``parse_events``.
* ``asyncinotify``: ``async for event in Inotify()`` in a task of its own
  that sets the tailer's wake-up (its documented way to use it).
* ``watchfiles``: the fallback, for scale.

A writer thread writes one line at a time, stamped with ``time.monotonic_ns``
(one clock for the whole machine), and writes the next only after the
subscriber got the previous one, after a random pause of 1-4 ms so the
tailer is back waiting. Rounds alternate the variants (ABCD ABCD ...), so a
burst of load from elsewhere on the machine hits every variant alike.

Usage (needs the two libraries in the venv; not part of ``make test``)::

    .venv/bin/pip install asyncinotify==4.4.4 inotify-simple==2.0.1
    .venv/bin/python bench/inotify_latency.py --rounds 6 --lines 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django.setup()

from bench import inotify_ctypes  # noqa: E402
from streams.logs.files.tailer import Tailer  # noqa: E402
from streams.logs.files.watch import WATCH_MASK, InotifyWatch, Watcher, WatchFactory  # noqa: E402

Wake = Callable[[], None]


class HandWrittenWatch:
    """The ctypes baseline, re-armed like ``InotifyWatch``."""

    def __init__(self, path: Path, wake: Wake, loop: asyncio.AbstractEventLoop) -> None:
        self._watch = inotify_ctypes.DirectoryWatch(path.parent, path.name, wake, loop)

    @property
    def watching(self) -> bool:
        return self._watch.alive

    def ensure(self) -> None:
        pass

    def close(self) -> None:
        self._watch.close()


class InotifySimpleWatch:
    """inotify_simple's descriptor on the loop, like the hand-written one."""

    def __init__(self, path: Path, wake: Wake, loop: asyncio.AbstractEventLoop) -> None:
        from inotify_simple import INotify  # type: ignore[import-untyped]

        self._inotify = INotify(nonblocking=True)
        self._inotify.add_watch(path.parent, WATCH_MASK)
        self._name = path.name
        self._wake = wake
        self._loop = loop
        loop.add_reader(self._inotify.fileno(), self._readable)

    def _readable(self) -> None:
        if any(event.name == self._name for event in self._inotify.read(timeout=0)):
            self._wake()

    @property
    def watching(self) -> bool:
        return not self._inotify.closed

    def ensure(self) -> None:
        pass

    def close(self) -> None:
        self._loop.remove_reader(self._inotify.fileno())
        self._inotify.close()


class AsyncinotifyWatch:
    """asyncinotify's async iterator in a task that wakes the tailer."""

    def __init__(self, path: Path, wake: Wake, loop: asyncio.AbstractEventLoop) -> None:
        from asyncinotify import Inotify, Mask

        self._inotify = Inotify()
        self._inotify.add_watch(path.parent, Mask(WATCH_MASK))
        self._name = path.name
        self._wake = wake
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._inotify:
            if event.name is not None and event.name.name == self._name:
                self._wake()

    @property
    def watching(self) -> bool:
        return not self._task.done()

    def ensure(self) -> None:
        pass

    def close(self) -> None:
        self._task.cancel()
        self._inotify.close()


VARIANTS: dict[str, Watcher | WatchFactory] = {
    "hand-written": HandWrittenWatch,
    "adopted": InotifyWatch,
    "inotify_simple": InotifySimpleWatch,
    "asyncinotify": AsyncinotifyWatch,
    "watchfiles": "watchfiles",
}


async def one_round(variant: str, lines: int, directory: Path) -> list[float]:
    """``lines`` write-to-delivery latencies in ms for one variant."""
    path = directory / f"{variant}.log"
    path.write_text("")
    tailer = Tailer(path, watcher=VARIANTS[variant], queue_limit=10_000)
    subscription = tailer.subscribe()
    received = threading.Event()
    stop = threading.Event()
    latencies: list[float] = []

    def writer() -> None:
        rng = random.Random(len(variant))
        with path.open("a", buffering=1) as f:
            for _ in range(lines):
                stop.wait(rng.uniform(0.001, 0.004))
                received.clear()
                f.write(f"{time.monotonic_ns()}\n")
                if not received.wait(5) or stop.is_set():
                    return

    try:
        async with asyncio.timeout(10):
            # The tailer's step counter has no event of its own: poll it, bounded.
            while not (tailer.watching and tailer.steps >= 1):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        async with asyncio.timeout(60):
            while len(latencies) < lines:
                delivery = await subscription.next()
                now = time.monotonic_ns()
                for batch in delivery.batches:
                    for line in batch.lines:
                        latencies.append((now - int(line.text)) / 1e6)
                received.set()
        thread.join(5)
    finally:
        stop.set()
        received.set()
        subscription.close()
        await tailer.wait_closed()
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = args.variants.split(",")
    results: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name in names:
                results[name] += await one_round(name, args.lines, Path(tmp))
    print(f"{args.rounds} rounds x {args.lines} lines per variant, os.cpu_count()={os.cpu_count()}")
    print("| watcher | lines | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, values in results.items():
        print(
            f"| {name} | {len(values)} | {quantile(values, 0.5):.3f} | {quantile(values, 0.9):.3f}"
            f" | {quantile(values, 0.99):.3f} | {max(values):.3f} | {statistics.mean(values):.3f} |"
        )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
