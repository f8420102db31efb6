"""Log sources: the contract every kind implements, and the lookup by name.

A *source* is something that produces log lines and can be followed: today a
file (``streams.logs.files``, ``tail -F``), tomorrow lines shipped from
other hosts. Everything above this module (``follow``, ``overview``,
``encoding``, ``forms``, the views) talks to a ``LogSource`` and never to a
kind; the kinds share the fan-out (``streams.logs.fanout``).

What a source offers (the model is ``django.contrib.sessions.backends``:
one small base, one module per kind, picked by name from settings):

* ``subscribe()``: a ``SourceSubscription`` on the source's shared fan-out,
  registered at the source's current position in one synchronous step.
* its **cursor**: ``parse_cursor(text)`` turns an SSE ``id:`` it sent back
  into a ``LogCursor`` (``ValueError`` on garbage, so the form answers 400);
  ``str(cursor)`` formats it; ``cursor_syntax`` names the shape for the 400.
* **history** before a subscription's start, on the subscription:
  ``backfill(count)`` (the last lines) and ``since(after)`` (what a resume
  missed, with a notice when that cursor is gone); ``context_start`` for a
  permalink's lines before its line.
* ``summary()`` for the pages, and ``download(request)``: the raw form, or
  ``None`` where a kind has none (the view answers 404).

``STREAMBOARD_LOGS`` maps names to a location: ``name=/path`` is a file; a
location ``scheme:rest`` (not an absolute path) names another kind by its
scheme. ``KINDS`` is the one place that dispatch happens (the settings
parser, ``dashboard.environment.parse_log_sources``, still accepts only
absolute paths: a new kind teaches it its scheme).
"""

from __future__ import annotations

import abc
import importlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from streams.conf import log_sources
from streams.logs.fanout import FanOut, Subscription
from streams.logs.lines import LogCursor, LogLine

#: Location scheme -> ``"module:factory"`` of the kind, a ``SourceFactory``
#: (imported on first use, so a kind may import this module for its base
#: classes). Locations without a scheme are files.
KINDS: Final[dict[str, str]] = {
    "file": "streams.logs.files.source:from_location",
    "redis": "streams.logs.redis.source:from_location",
}


@dataclass(frozen=True)
class Resume:
    """What a client resuming after a cursor reads before the live lines.

    ``notice`` is set when the cursor is gone (rotated away, truncated,
    expired): ``lines`` then start from the oldest the source still has.
    ``cursor`` is the ``id:`` of the first event: the subscription's start,
    or the client's own cursor when the client is ahead of this process.
    """

    notice: str | None
    lines: AsyncIterator[list[LogLine]]
    cursor: LogCursor


@dataclass(frozen=True)
class SourceSummary:
    """What a page says about a source before any stream starts (it may not exist yet)."""

    exists: bool
    size: int = 0
    #: This process's live clients of the source, and how many are in push mode
    #: (``streams.logs.fanout``): known on the event loop only, 0 elsewhere.
    clients: int = 0
    pushed: int = 0


class SourceSubscription(Subscription, abc.ABC):
    """A client's subscription with the history before its ``start``, as its source reads it."""

    fanout: FanOut

    async def settled(self, idle: float | None) -> bool:
        """Whether ``start`` is known, waiting up to ``idle`` s (``None``: as long as it takes).

        A file's start is known when it subscribes; a Redis stream's after
        its reader's first answer, which may be late while Redis is down.
        """
        return True

    @abc.abstractmethod
    def backfill(self, count: int) -> AsyncIterator[list[LogLine]]:
        """The last ``count`` complete lines before ``start``, in bounded batches, oldest first."""

    @abc.abstractmethod
    async def since(self, after: LogCursor) -> Resume:
        """The lines after ``after`` up to ``start`` (or a notice saying ``after`` is gone)."""


class LogSource(Protocol):
    """One configured source of log lines (see the module docstring)."""

    @property
    def name(self) -> str:
        """The configured name (what URLs carry; never a location)."""
        ...

    @property
    def cursor_syntax(self) -> str:
        """The cursor's shape, for the 400 that refuses a malformed ``Last-Event-ID``."""
        ...

    def parse_cursor(self, text: str) -> LogCursor:
        """The cursor ``str(cursor)`` produced; ``ValueError`` on anything else."""
        ...

    def subscribe(self) -> SourceSubscription:
        """Register a subscriber at the current position (starting the source if needed).

        Synchronous: registering and taking the position happen in one step
        of the event loop, so no batch can slip in between.
        """
        ...

    async def context_start(self, cursor: LogCursor, before: int) -> LogCursor:
        """A cursor ``before`` lines ahead of ``cursor``'s line (a permalink, ``?at=``).

        Resuming from it (``since``) gives those lines, the line itself and
        the rest up to the present. ``cursor`` itself if the kind cannot look back.
        """
        ...

    async def level_minutes(self, since: float, end: LogCursor) -> dict[int, Counter[str]]:
        """Lines per epoch minute by level from ``since`` up to ``end``, from their timestamps.

        For the overview's chart (bounded work); empty if the kind keeps no history.
        """
        ...

    def summary(self) -> SourceSummary: ...

    async def download(self, request: HttpRequest) -> HttpResponseBase | None:
        """The raw source as a download (with ranges), or ``None`` if this kind has none."""
        ...


#: Builds a source from its name and the location after its scheme.
SourceFactory = Callable[[str, str], LogSource]


class UnknownSource(LookupError):
    """No source has that name (the views answer 404)."""


def source_kind(location: str) -> tuple[str, str]:
    """``(scheme, rest)`` of a configured location: ``"redis:app"`` or a file path."""
    scheme, sep, rest = location.partition(":")
    if sep and not location.startswith("/") and scheme.isidentifier():
        return scheme, rest
    return "file", location


def make_source(name: str, location: str) -> LogSource:
    """The source ``name`` configured at ``location`` (dispatching on its scheme)."""
    scheme, rest = source_kind(location)
    try:
        target = KINDS[scheme]
    except KeyError:
        raise UnknownSource(f"log source {name!r}: no kind of source for {scheme!r}") from None
    module, _, attribute = target.partition(":")
    factory: SourceFactory = getattr(importlib.import_module(module), attribute)
    return factory(name, rest)


def get_source(name: str) -> LogSource:
    """The configured source called ``name``; ``UnknownSource`` if none is."""
    try:
        location = log_sources()[name]
    except KeyError:
        raise UnknownSource(name) from None
    return make_source(name, str(location))


def get_source_or_404(name: str) -> LogSource:
    """``get_source`` for views: an unknown name is a 404 before anything is read."""
    try:
        return get_source(name)
    except UnknownSource:
        raise Http404("No such log source.") from None


def all_sources() -> dict[str, LogSource]:
    """Every configured source, by name, in configuration order."""
    return {name: make_source(name, str(location)) for name, location in log_sources().items()}
