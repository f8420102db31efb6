"""A tiny progress bar for management commands, drawn on their stderr.

Hand-written rather than a dependency: a bar, a count, rows/s and an ETA is
all the commands need. It redraws at most ten times a second, and on a
stream that is not a terminal it writes only the final line (a log file does
not want carriage returns).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import OutputWrapper

WIDTH = 30
REDRAW_SECONDS = 0.1


class ProgressBar:
    def __init__(
        self,
        total: int | None,
        stream: OutputWrapper,
        *,
        label: str = "",
        unit: str = "rows",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.unit = unit
        self.clock = clock
        self.done = 0
        self.started = clock()
        self.drawn_at = -REDRAW_SECONDS
        self.live = stream.isatty()

    def update(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if self.live and now - self.drawn_at >= REDRAW_SECONDS:
            self.drawn_at = now
            self.stream.write("\r" + self.line(now), ending="")
            self.stream.flush()

    def close(self) -> None:
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self.line(self.clock()))
        self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        label = f"{self.label} " if self.label else ""
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = round(fraction * WIDTH)
            remaining = (self.total - self.done) / rate if rate else 0.0
            return (
                f"{label}[{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%} "
                f"{self.done:,}/{self.total:,} {self.unit} {rate:,.0f}/s "
                f"elapsed {elapsed:.1f}s eta {max(remaining, 0):.1f}s"
            )
        return f"{label}{self.done:,} {self.unit} {rate:,.0f}/s elapsed {elapsed:.1f}s"
