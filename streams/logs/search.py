"""The async producer of a history search: results, progress, and the end, as events.

``search_events`` runs ``streams.logs.history.search_history`` (blocking
file reads) in a worker thread, one *slice* at a time: a slice ends after
``slice_results`` results or ``slice_seconds`` of work, whichever comes
first, and its items become events on the event loop. Choices:

* **Reading stops with the client.** Nothing is read ahead of the consumer
  by more than one slice: when the consumer stops (a client that goes away
  cancels or closes the generator), the thread finishes at most the slice
  it is in, told to stop early by a flag it checks between items, and the
  search generator is then closed, which closes its files.
* **Bounded memory**: one slice of results at a time; ``limit`` caps the
  results of a whole search (``DoneEvent.limited`` says it was reached).
* **Progress** is coalesced: the last ``SearchProgress`` of a slice becomes
  one ``ProgressEvent``.
* Plain domain events, encoded elsewhere (as for the live stream); a
  ``CancelledError`` is never swallowed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from streams.logs.history import (
    HistoryFile,
    SearchOptions,
    SearchProgress,
    SearchResult,
    search_history,
)
from streams.logs.patterns import LineMatcher
from streams.logs.timestamps import TimeRange

#: Work per slice in the thread (seconds), and results per slice at most.
SLICE_SECONDS: Final = 0.05
SLICE_RESULTS: Final = 200
#: Results of one search at most, unless the caller says otherwise.
DEFAULT_LIMIT: Final = 1000


@dataclass(frozen=True)
class ResultEvent:
    result: SearchResult


@dataclass(frozen=True)
class ProgressEvent:
    scanned: int
    total: int


@dataclass(frozen=True)
class DoneEvent:
    results: int
    scanned: int
    total: int
    limited: bool  # stopped at ``limit`` results, more may exist
    seconds: float


SearchEvent = ResultEvent | ProgressEvent | DoneEvent

_Item = SearchResult | SearchProgress


class _Slicer:
    """Takes slices of a search generator in a worker thread; closes it when told to stop.

    ``take`` and ``close`` hold one lock, so the generator is never closed
    while a slice runs it; ``stop`` makes a running slice return early.
    """

    def __init__(self, items: Iterator[_Item]) -> None:
        self.items = items
        self.stop = threading.Event()
        self.exhausted = False
        self.closed = False
        self._lock = threading.Lock()

    def take(self, max_results: int, max_seconds: float) -> list[_Item]:
        with self._lock:
            if self.closed:
                return []
            deadline = time.monotonic() + max_seconds
            taken: list[_Item] = []
            results = 0
            for item in self.items:
                taken.append(item)
                if isinstance(item, SearchResult):
                    results += 1
                    if results >= max_results:
                        return taken
                if self.stop.is_set() or time.monotonic() >= deadline:
                    return taken
            self.exhausted = True
            return taken

    def close_when_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the search now if no slice runs, else as soon as the running one returns."""
        self.stop.set()
        if self._lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._lock.release()
        else:
            try:
                loop.run_in_executor(None, self._close_blocking)
            except RuntimeError:
                # The loop or its executor is shutting down: a thread of its own.
                threading.Thread(target=self._close_blocking, daemon=True).start()

    def _close_blocking(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            close = getattr(self.items, "close", None)
            if close is not None:
                close()


async def search_events(
    files: Sequence[HistoryFile],
    matcher: LineMatcher,
    time_range: TimeRange | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    options: SearchOptions | None = None,
    slice_results: int = SLICE_RESULTS,
    slice_seconds: float = SLICE_SECONDS,
) -> AsyncGenerator[SearchEvent]:
    """Results newest first, progress along the way, then one ``DoneEvent``."""
    started = time.monotonic()
    slicer = _Slicer(search_history(files, matcher, time_range, options))
    loop = asyncio.get_running_loop()
    results = 0
    progress = SearchProgress(0, 0, "")
    limited = False
    try:
        while not slicer.exhausted:
            wanted = min(slice_results, limit - results)
            items = await loop.run_in_executor(None, slicer.take, wanted, slice_seconds)
            last_progress: SearchProgress | None = None
            for item in items:
                if isinstance(item, SearchResult):
                    results += 1
                    yield ResultEvent(item)
                else:
                    last_progress = item
            if last_progress is not None:
                progress = last_progress
                yield ProgressEvent(progress.scanned, progress.total)
            if results >= limit:
                limited = not slicer.exhausted
                break
        seconds = time.monotonic() - started
        yield DoneEvent(results, progress.scanned, progress.total, limited, seconds)
    finally:
        slicer.close_when_idle(loop)
