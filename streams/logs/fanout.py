"""The fan-out: one source's lines shared by every client, through bounded queues.

Source-independent on purpose: it knows lines, batches and cursors, but not
files, inodes or descriptors, so a second kind of source (``streams.logs.sources``)
reuses it unchanged. A source owns one ``FanOut`` per thing it follows and
``publish``-es ``LogBatch`` objects into it; every client holds a
``Subscription``. Choices:

* **Batches are shared and immutable**: each is encoded at most once per
  format (cached on the batch), then reused by every unfiltered client.
* **Queues are bounded in lines**: a subscriber whose queue would overflow
  drops what it holds, counts it, and continues from the present: its next
  read starts with the skipped count (and the cursor of the last dropped
  batch). A batch alone is always taken, so a client that keeps up never
  loses lines to a burst that arrives in one read.
* **Cursors are opaque**: the fan-out stores and hands back whatever
  ``LogCursor`` the source put on a batch; only the source parses or
  compares them (``Subscription.skip_through`` takes the source's own test).
* **Registration and position in one step**: ``FanOut.add`` registers a
  subscription that was created at ``FanOut.position`` without an ``await``
  in between, so lines up to that position come from the source's history
  and lines after it from the queue: no gap, no duplicate.
* **Observers** (``add_observer``) see every published batch once, before
  the subscribers do: the overview's counts and latest line are fed this way,
  instead of being written into the source from outside.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

from streams.logs.lines import LogCursor, LogLine

logger = logging.getLogger(__name__)

#: Called with every batch a fan-out publishes (on the event loop; must not block).
Observer = Callable[["LogBatch"], None]
#: The source's test "this line's cursor was already delivered to the client".
SeenTest = Callable[[LogCursor], bool]


class LogBatch:
    """Lines pushed together to every subscriber; immutable, encoded once per format."""

    # ``__weakref__``: a redacted twin is cached beside it (``streams.logs.redacted``).
    __slots__ = ("__weakref__", "_encoded", "cursor", "lines", "notice")

    def __init__(
        self, lines: tuple[LogLine, ...], cursor: LogCursor, notice: str | None = None
    ) -> None:
        self.lines = lines
        self.cursor = cursor
        self.notice = notice
        self._encoded: dict[str, str] = {}

    def encoded(self, key: str, encode: Callable[[tuple[LogLine, ...]], str]) -> str:
        """``encode(lines)``, computed on first use and shared by every subscriber."""
        value = self._encoded.get(key)
        if value is None:
            value = self._encoded[key] = encode(self.lines)
        return value

    def __repr__(self) -> str:
        return f"LogBatch({len(self.lines)} lines, cursor={self.cursor}, notice={self.notice!r})"


@dataclass
class Delivery:
    """What a subscriber gets on one read: a skipped count first, then batches in order."""

    skipped: int
    skipped_cursor: LogCursor | None
    batches: list[LogBatch]


class Subscription:
    """One client's bounded queue on a fan-out, and the position it started at.

    Sources subclass it to add what a client reads before the live lines
    (``streams.logs.sources.SourceSubscription``: backfill and resume).
    """

    def __init__(
        self,
        limit: int,
        start: LogCursor,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.limit = max(1, limit)
        self.start = start
        self._on_close = on_close
        self._queue: deque[LogBatch] = deque()
        self._queued_lines = 0
        self._skipped = 0
        self._skipped_cursor: LogCursor | None = None
        self._wakeup = asyncio.Event()
        self._skip: tuple[LogCursor, SeenTest] | None = None
        self.closed = False

    # -- fed by the fan-out, on the event loop --------------------------------

    def push(self, batch: LogBatch) -> None:
        if self._skip is not None and batch.lines:
            batch = self._without_seen(batch, *self._skip)
            if not batch.lines:
                return
        size = len(batch.lines)
        if self._queue and self._queued_lines + size > self.limit:
            # Overflow: drop what is queued and continue from the present. A
            # batch alone is always taken: it is shared by every subscriber (and
            # bounded by the source's step), so a client that keeps up never
            # loses lines to a burst that arrives in one read.
            dropped = [b for b in self._queue if b.lines]
            self._skipped += self._queued_lines
            if dropped:
                self._skipped_cursor = dropped[-1].cursor
            self._queue.clear()
            self._queued_lines = 0
        self._queue.append(batch)
        self._queued_lines += size
        self._wakeup.set()

    def skip_through(self, until: LogCursor, seen: SeenTest) -> None:
        """Drop live lines the client already has: those with ``seen(cursor)``, up to ``until``.

        For a resume from a cursor ahead of the source's reader (another
        process, or lines not read yet). Skipping ends with the first batch
        that reaches ``until`` or holds a line not seen.
        """
        self._skip = (until, seen)

    @property
    def skipping(self) -> bool:
        """Whether live lines the client already has are still being dropped."""
        return self._skip is not None

    def _without_seen(self, batch: LogBatch, until: LogCursor, seen: SeenTest) -> LogBatch:
        lines = tuple(line for line in batch.lines if not seen(line.cursor))
        last = batch.lines[-1].cursor
        if last == until or not seen(last):
            self._skip = None  # past the cursor: nothing more to skip
        if len(lines) == len(batch.lines):
            return batch
        return LogBatch(lines, batch.cursor, batch.notice)

    # -- read by the client's producer ----------------------------------------

    @property
    def queued_lines(self) -> int:
        return self._queued_lines

    @overload
    async def next(self) -> Delivery: ...
    @overload
    async def next(self, idle: float | None) -> Delivery | None: ...

    async def next(self, idle: float | None = None) -> Delivery | None:
        """Everything queued right now (waiting only while there is nothing).

        ``None`` after ``idle`` seconds with nothing queued: the wait is on
        an event, not on the queue, so timing out loses nothing.
        """
        while not self._queue and not self._skipped:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(idle):
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        delivery = Delivery(self._skipped, self._skipped_cursor, list(self._queue))
        self.discard()
        return delivery

    def pending(self) -> bool:
        return bool(self._queue or self._skipped)

    async def wait(self) -> None:
        """Wait until something is queued (the overview peeks without reading)."""
        while not self.pending():
            self._wakeup.clear()
            await self._wakeup.wait()

    def discard(self) -> None:
        """Forget everything queued (and the skipped count)."""
        self._queue.clear()
        self._queued_lines = 0
        self._skipped = 0
        self._skipped_cursor = None

    def release(self) -> None:
        """The history before ``start`` has been read: free what it held (nothing here)."""

    def close(self) -> None:
        """Leave the fan-out (idempotent); a source may stop with its last subscriber."""
        if self.closed:
            return
        self.closed = True
        self.release()
        if self._on_close is not None:
            self._on_close(self)


#: Called with every new fan-out (``on_new_fanout``).
_new_fanout_hooks: list[Callable[[FanOut], object]] = []


def on_new_fanout(hook: Callable[[FanOut], object]) -> None:
    """Call ``hook(fanout)`` for every fan-out created from now on.

    So an observer can see a fan-out's whole life, not only from the moment
    someone first asks (the overview counts lines from the start of a
    tailer, as when the counts lived on it).
    """
    _new_fanout_hooks.append(hook)


class FanOut:
    """The subscribers and observers of one followed thing, and its current position.

    ``position`` is the cursor just after the last line published; the source
    sets it (``advance``) before publishing what it read.
    """

    def __init__(self, origin: LogCursor, on_empty: Callable[[], None] | None = None) -> None:
        self.position = origin
        self._on_empty = on_empty
        self._subscriptions: set[Subscription] = set()
        self._observers: list[Observer] = []
        for hook in _new_fanout_hooks:
            hook(self)

    @property
    def subscriptions(self) -> frozenset[Subscription]:
        return frozenset(self._subscriptions)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def add[S: Subscription](self, subscription: S) -> S:
        """Register a subscription created at ``position`` (synchronously: no gap)."""
        self._subscriptions.add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Unregister; ``on_empty`` runs when the last subscriber has left."""
        if subscription not in self._subscriptions:
            return
        self._subscriptions.discard(subscription)
        if not self._subscriptions and self._on_empty is not None:
            self._on_empty()

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(batch)`` for every batch published from now on; returns its remover."""
        self._observers.append(observer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return remove

    def advance(self, position: LogCursor) -> None:
        self.position = position

    def publish(self, batch: LogBatch) -> None:
        """Hand ``batch`` to every observer, then to every subscriber's queue."""
        for observer in list(self._observers):
            try:
                observer(batch)
            except Exception:
                logger.exception("log observer %r failed", observer)
        for subscription in list(self._subscriptions):
            subscription.push(batch)
