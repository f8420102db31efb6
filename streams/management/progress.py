"""The terminal progress bar of the management commands (``export``, ``seed_demo``): tqdm.

tqdm draws and throttles the bar (at most ten redraws a second) and stays
silent when stderr is not a terminal, so a log file or a test's captured
stderr gets no carriage returns and no bar at all. The look is the one the
commands always had::

    orders [#########.....................]  31% 3,100/10,000 rows 1,234/s elapsed 2.5s eta 5.6s

(or ``label 3,100 rows 1,234/s elapsed 2.5s`` when the total is unknown or
zero). Rates and the ETA are the average over the whole run, not tqdm's
smoothed ones: a chunked export's instantaneous rate jumps chunk by chunk.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, NoReturn

from django.core.management.base import OutputWrapper
from tqdm import tqdm

WIDTH = 30
REDRAW_SECONDS = 0.1
WITH_TOTAL = (
    f"{{desc}} [{{bar:{WIDTH}}}] {{percentage:3.0f}}% {{n:,}}/{{total:,}} {{unit}} "
    "{per_second}/s elapsed {elapsed_s:.1f}s eta {eta_s:.1f}s"
)
WITHOUT_TOTAL = "{desc} {n:,} {unit} {per_second}/s elapsed {elapsed_s:.1f}s"

if TYPE_CHECKING:
    _Bar = tqdm[NoReturn]
else:
    _Bar = tqdm


class _Unterminated:
    """An ``OutputWrapper`` as a plain text stream: tqdm's writes get no added newline."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text, ending="")

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


class ProgressBar(_Bar):
    """A tqdm bar over ``total`` rows on a command's ``stderr``; ``update(n)`` and ``close()``."""

    def __init__(
        self, total: int | None, stream: OutputWrapper, *, label: str, unit: str = "rows"
    ) -> None:
        super().__init__(
            total=total,
            file=_Unterminated(stream),
            desc=label,
            unit=unit,
            ascii=".#",
            bar_format=WITH_TOTAL if total else WITHOUT_TOTAL,
            mininterval=REDRAW_SECONDS,
            disable=None,  # None: off when the stream is not a terminal
            dynamic_ncols=False,
        )

    @property
    def format_dict(self) -> MutableMapping[str, Any]:
        values = super().format_dict
        elapsed = values.get("elapsed") or 0
        done = values.get("n") or 0
        rate = done / elapsed if elapsed else 0.0
        remaining = (self.total - done) / rate if rate and self.total else 0.0
        values["per_second"] = f"{rate:,.0f}"
        values["eta_s"] = max(remaining, 0.0)
        return values
