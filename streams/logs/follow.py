"""The per-client producer of a live log: backfill or resume, then live lines.

``follow_log`` is a plain async generator of domain events (``LinesEvent``,
``SkippedEvent``, ``NoticeEvent``), testable without HTTP; the views pick an
encoder (``streams.logs.encoding``). Choices:

* **Any source** (``streams.logs.sources.LogSource``): the producer knows
  subscriptions, batches and opaque cursors, never files.
* **Subscribe first, then read the history** up to the subscription's start,
  so backfill and live lines meet with no gap and no duplicate.
* **Nothing before the start is known**: a source that cannot yet tell where
  the subscription starts (a Redis stream before its reader's first answer)
  gets heartbeats only, so the response head, sent with the first bytes,
  means "following from here".
* **The first real event is always a ``lines`` event**, even with no line, so
  its ``id:`` gives the client a cursor at once: a reconnect then resumes
  exactly, even from a quiet or filtered log.
* **Coalescing without delay, in bounded reads**: each time the client's
  writer asks for the next event, what is queued at that moment goes out,
  up to ``DELIVERY_BYTES`` of text (the encoder then keeps every SSE event
  under its cap); it never waits for more. The rest stays in the bounded
  queue, so a client that cannot keep up overflows there, gets its
  ``skipped`` event and then the present, instead of working through a
  backlog held in one huge event.
* **Encode once**: an unfiltered client's event keeps the fan-out's shared
  batches, whose encoding is cached on the batch; a filtered one carries its
  own lines.
* **Push mode** (``direct``): an unfiltered client that has caught up (its
  queue empty, every event it was given sent) hands its delivery to the
  fan-out, which writes each group's bytes to its socket; the producer
  sleeps until the client falls behind, then takes over from the queue, and
  hands back at the next frame boundary where it has caught up again.
  ``lone_group_events`` is what both paths send for one published group.
* Cleanup in ``finally:`` unsubscribes (a source may stop with its last
  subscriber); ``CancelledError`` is never swallowed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from streams.logs.fanout import SLICE_BYTES, Delivery, DirectTarget, LogBatch
from streams.logs.lines import LogCursor, LogLine
from streams.logs.patterns import LineMatcher
from streams.logs.redacted import redacted_batch, redacted_line
from streams.logs.redaction import Redactor
from streams.logs.sources import LogSource, SourceSubscription


@dataclass
class LineFilter:
    """What one client sees of the lines: redacted, then filtered; tracebacks follow their header.

    ``matcher`` holds the filters (level, ``q``, ``re``, ``exclude``: RE2,
    ``streams.logs.patterns``) and ``host`` the shipping host's label; a kept
    line that a text filter matched carries
    the ranges to highlight (``LogLine.marks``). ``redactor`` (``None``: the
    client may see lines as written) runs first, so a filter only ever sees
    what the client would: ``q=`` cannot tell whether a hidden value is there.
    """

    matcher: LineMatcher = field(default_factory=LineMatcher)
    redactor: Redactor | None = None
    host: str = ""
    _keep_entry: bool | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Whether lines are filtered (redaction alone keeps the shared batches)."""
        return self.matcher.active or bool(self.host)

    def matches(self, line: LogLine) -> bool:
        if self.host and line.host != self.host:
            return False
        return self.matcher.matches(line)

    def apply(self, lines: list[LogLine] | tuple[LogLine, ...]) -> list[LogLine]:
        """``lines`` as this client sees them (redacted), and only those it asked for."""
        if self.redactor is not None:
            lines = [redacted_line(line, self.redactor) for line in lines]
        return self.keep(lines)

    def keep(self, lines: list[LogLine] | tuple[LogLine, ...]) -> list[LogLine]:
        """The lines (already redacted) that pass the filters, with their highlights."""
        if not self.active:
            return list(lines)
        marking = self.matcher.query is not None or self.matcher.regex is not None
        kept = []
        for line in lines:
            if line.continuation and self._keep_entry is not None:
                keep = self._keep_entry
            else:
                keep = self._keep_entry = self.matches(line)
            if keep:
                if marking and (marks := self.matcher.spans(line.text)):
                    line = replace(line, marks=tuple(marks))
                kept.append(line)
        return kept


@dataclass(frozen=True)
class LinesEvent:
    """Lines for the client; ``batches`` set when they are the fan-out's shared batches."""

    lines: tuple[LogLine, ...]
    cursor: LogCursor
    batches: tuple[LogBatch, ...] | None = None


@dataclass(frozen=True)
class SkippedEvent:
    count: int
    cursor: LogCursor


@dataclass(frozen=True)
class NoticeEvent:
    text: str
    cursor: LogCursor


@dataclass(frozen=True)
class IdleEvent:
    """Nothing arrived for ``idle`` seconds: the encoder sends a heartbeat.

    The producer times its own idleness (``Subscription.next`` is safe to
    time out) so that a stream needs no heartbeat wrapper, which costs a
    hand-over between two tasks for every event of every client.
    """


IDLE: Final = IdleEvent()

#: Text taken from the queue per read: two slices, whose JSON or HTML stays
#: under one SSE event's cap (``streams.logs.encoding.EVENT_DATA_BYTES``) for
#: ordinary lines; a burst becomes a run of such events, each sent as soon as
#: the client's writer is free.
DELIVERY_BYTES: Final = 2 * SLICE_BYTES

LogEvent = LinesEvent | SkippedEvent | NoticeEvent | IdleEvent


async def follow_log(
    source: LogSource,
    *,
    backfill: int = 100,
    after: LogCursor | None = None,
    line_filter: LineFilter | None = None,
    idle: float | None = None,
    direct: DirectTarget | None = None,
) -> AsyncGenerator[LogEvent]:
    """Backfill (or resume after ``after``), then live lines of ``source``, as events.

    With ``idle``, an ``IdleEvent`` follows every ``idle`` seconds without lines.
    With ``direct`` (and no filter), live groups go straight to it whenever
    the client keeps up (push mode, see the module docstring); it must write
    the bytes this generator's encoder would (``streams.logs.push``), so the
    stream is the same either way. Each time this generator is resumed, the
    events it gave before have been sent: only then may it hand over.
    """
    line_filter = line_filter or LineFilter()
    subscription = source.subscribe()
    if line_filter.active:
        direct = None  # a filtered client's lines are its own: never pushed
    try:
        # Nothing goes out (not even the head) before the start is known:
        # heartbeats while a source is slow to tell it (Redis unreachable).
        while not await subscription.settled(idle):
            yield IDLE
        async for event in _opening(subscription, backfill, after, line_filter):
            yield event
        subscription.release()
        while True:
            if direct is not None and subscription.can_push():
                await subscription.fanout.push_directly(subscription, direct, idle)
            delivery = await subscription.next(idle, DELIVERY_BYTES)
            if delivery is None:
                yield IDLE
                continue
            for event in _delivery_events(delivery, subscription.start, line_filter):
                yield event
    finally:
        subscription.close()


def delivery_runs(batches: Sequence[LogBatch], max_bytes: int) -> Iterator[list[LogBatch]]:
    """``batches`` in the reads ``Subscription.next(max_bytes=)`` makes of them alone.

    At least one batch per read, then as many as fit in ``max_bytes``.
    """
    run: list[LogBatch] = []
    size = 0
    for batch in batches:
        if run and size + batch.size > max_bytes:
            yield run
            run, size = [], 0
        run.append(batch)
        size += batch.size
    if run:
        yield run


def lone_group_events(batches: Sequence[LogBatch], line_filter: LineFilter) -> Iterator[LogEvent]:
    """The events ``follow_log`` gives a client that keeps up for one published group.

    What push mode frames once for every client (``streams.logs.push``):
    the same reads, split at the same notices, redacted the same way.
    """
    for run in delivery_runs(batches, DELIVERY_BYTES):
        yield from _delivery_events(Delivery(0, None, run), run[0].cursor, line_filter)


def _delivery_events(
    delivery: Delivery, start: LogCursor, line_filter: LineFilter
) -> Iterator[LogEvent]:
    """One read of the queue as events: the skipped count, then lines split at notices."""
    if delivery.skipped:
        yield SkippedEvent(delivery.skipped, delivery.skipped_cursor or start)
    run: list[LogBatch] = []
    for batch in delivery.batches:
        if batch.notice is not None:
            if lines_event := _lines_event(run, line_filter):
                yield lines_event
            run = []
            yield NoticeEvent(batch.notice, batch.cursor)
        if batch.lines:
            run.append(batch)
    if lines_event := _lines_event(run, line_filter):
        yield lines_event


async def _opening(
    subscription: SourceSubscription,
    backfill: int,
    after: LogCursor | None,
    line_filter: LineFilter,
) -> AsyncIterator[LogEvent]:
    """The lines before the subscription's start: a backfill, or what a resume missed."""
    cursor = subscription.start
    if after is None:
        chunks = subscription.backfill(backfill)
    else:
        resume = await subscription.since(after)
        if resume.notice is not None:
            yield NoticeEvent(resume.notice, after)
        chunks, cursor = resume.lines, resume.cursor
    lines: list[LogLine] = []
    async for chunk in chunks:
        # Lines come in bounded chunks; each one that fills up goes out on its own.
        lines.extend(line_filter.apply(chunk))
        if len(lines) >= 1000:
            yield LinesEvent(tuple(lines), lines[-1].cursor)
            lines = []
    yield LinesEvent(tuple(lines), cursor)


def _lines_event(batches: list[LogBatch], line_filter: LineFilter) -> LinesEvent | None:
    if not batches:
        return None
    cursor = batches[-1].cursor
    if line_filter.redactor is not None:
        # Redacted once per batch and shared, like the encodings.
        batches = [redacted_batch(batch, line_filter.redactor) for batch in batches]
    if not line_filter.active:
        lines = tuple(line for batch in batches for line in batch.lines)
        return LinesEvent(lines, cursor, tuple(batches))
    kept = [line for batch in batches for line in line_filter.keep(batch.lines)]
    return LinesEvent(tuple(kept), cursor) if kept else None
