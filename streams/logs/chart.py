"""The overview's chart: lines per minute by level over the last hour, as SVG bars.

Pure counting and geometry; the card template draws the SVG (no script, no
library). Choices:

* **Minutes are epoch minutes** (``int(time // 60)``), so counts from the
  file (its lines' timestamps) and from live lines (their arrival time)
  fall into the same buckets.
* **Filled from the file when first needed** (``count_file_minutes``): the
  lines of the last hour up to where the live fan-out started, found by
  binary search on their timestamps (``streams.logs.history.seek_time``) and
  read forward. Bounded work: at most ``MAX_FILL_BYTES`` from the end of
  that range (a busier hour is counted from its most recent part). Lines
  without a timestamp (a traceback's) are not counted, as the live counts
  count headers only.
* **Live** lines are counted by the overview's observer as they are
  published (``MinuteCounts.add``), so the chart moves with the log.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streams.logs.history import ORDER_SLACK_SECONDS, seek_time
from streams.logs.lines import LEVELS, LogLine, detect_level, parse_json_object
from streams.logs.timestamps import TimeContext, line_time

#: Minutes the chart shows.
CHART_MINUTES: Final = 60
#: The most bytes read from a file to fill the chart.
MAX_FILL_BYTES: Final = 32 * 1024 * 1024
_READ_BYTES: Final = 256 * 1024

#: The SVG's size in user units: one bar per minute.
BAR_WIDTH: Final = 4
CHART_HEIGHT: Final = 40


def minute_of(when: float) -> int:
    return int(when // 60)


class MinuteCounts:
    """Lines per epoch minute by level, for the last ``CHART_MINUTES`` minutes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.minutes: dict[int, Counter[str]] = {}

    def add(self, lines: tuple[LogLine, ...]) -> None:
        """Live lines: counted in the minute they arrive (headers only, as the rates)."""
        counter = self.minutes.setdefault(minute_of(self._clock()), Counter())
        for line in lines:
            if not line.continuation:
                counter[line.level] += 1
        self._expire()

    def snapshot(self) -> dict[int, Counter[str]]:
        return {minute: counter.copy() for minute, counter in self.minutes.items()}

    def fill(self, counts: dict[int, Counter[str]], snapshot: dict[int, Counter[str]]) -> None:
        """Counts from the file up to a position, and the live ones observed after it.

        ``snapshot`` is what had been observed when that position was taken:
        it is replaced by ``counts`` (which cover the same lines and more).
        """
        live = {
            minute: counter - snapshot.get(minute, Counter())
            for minute, counter in self.minutes.items()
        }
        self.minutes = {}
        for source in (counts, live):
            for minute, counter in source.items():
                self.minutes.setdefault(minute, Counter()).update(counter)
        self._expire()

    def window(self) -> tuple[tuple[int, tuple[tuple[str, int], ...]], ...]:
        """The last ``CHART_MINUTES`` minutes, oldest first: ``(minute, ((level, count), ...))``."""
        now = minute_of(self._clock())
        self._expire()
        return tuple(
            (
                minute,
                tuple(
                    (level, count)
                    for level in LEVELS
                    if (count := self.minutes.get(minute, Counter()).get(level, 0))
                ),
            )
            for minute in range(now - CHART_MINUTES + 1, now + 1)
        )

    def _expire(self) -> None:
        oldest = minute_of(self._clock()) - CHART_MINUTES
        for minute in [m for m in self.minutes if m <= oldest]:
            del self.minutes[minute]


def count_file_minutes(
    path: Path, inode: int, end: int, since: float, context: TimeContext
) -> dict[int, Counter[str]]:
    """Header lines per minute by level in ``[since, end)`` of the file (if it is ``inode``)."""
    counts: dict[int, Counter[str]] = {}
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return counts
    try:
        stat = os.fstat(fd)
        if stat.st_ino != inode:
            return counts
        end = min(end, stat.st_size)
        start = seek_time(fd, since - ORDER_SLACK_SECONDS, context=context, end=end)
        if end - start > MAX_FILL_BYTES:
            start = end - MAX_FILL_BYTES
            skip = os.pread(fd, _READ_BYTES, start).find(b"\n")
            start += skip + 1 if skip >= 0 else 0
        position, rest = start, b""
        while position < end:
            chunk = os.pread(fd, min(_READ_BYTES, end - position), position)
            if not chunk:
                break
            position += len(chunk)
            data = rest + chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            for raw in lines:
                when = line_time(raw, context)
                if when is None or when < since:
                    continue
                text = raw.decode("utf-8", "replace")
                parsed = parse_json_object(text) if raw[:1] == b"{" else None
                level = detect_level(text, parsed)
                counts.setdefault(minute_of(when), Counter())[level] += 1
    finally:
        os.close(fd)
    return counts


@dataclass(frozen=True)
class Bar:
    """One level's part of one minute's bar, in SVG user units."""

    x: int
    y: float
    height: float
    level: str
    count: int
    minute: int


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    peak: int
    width: int = CHART_MINUTES * BAR_WIDTH
    height: int = CHART_HEIGHT


def chart_of(window: tuple[tuple[int, tuple[tuple[str, int], ...]], ...]) -> Chart:
    """Stacked bars (lowest level at the bottom) scaled to the busiest minute."""
    peak = max((sum(count for _, count in levels) for _, levels in window), default=0)
    bars: list[Bar] = []
    for index, (minute, levels) in enumerate(window):
        base = float(CHART_HEIGHT)
        for level, count in levels:
            height = CHART_HEIGHT * count / peak if peak else 0.0
            base -= height
            bars.append(
                Bar(index * BAR_WIDTH, round(base, 2), round(height, 2), level, count, minute)
            )
    return Chart(tuple(bars), peak)
