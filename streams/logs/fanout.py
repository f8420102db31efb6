"""The fan-out: one source's lines shared by every client, through bounded queues.

Source-independent on purpose: it knows lines, batches and cursors, but not
files, inodes or descriptors, so a second kind of source (``streams.logs.sources``)
reuses it unchanged. A source owns one ``FanOut`` per thing it follows and
``publish``-es ``LogBatch`` objects into it; every client holds a
``Subscription``. Choices:

* **Batches are shared and immutable**: each is encoded at most once per
  format (cached on the batch), then reused by every unfiltered client.
* **Batches are sliced at publish**: a batch of more than ``SLICE_BYTES`` of
  text is cut into slices (at entry boundaries where it can), so a client
  takes a burst a slice at a time and one SSE event stays small, while each
  slice is still encoded once for everyone.
* **Queues are bounded in lines and in bytes** (``STREAMBOARD_QUEUE_SIZE``,
  ``STREAMBOARD_QUEUE_BYTES``, whichever comes first): a subscriber whose
  queue would overflow drops what it holds, counts it, and continues from
  the present: its next read starts with the skipped count (and the cursor
  of the last dropped batch). What one ``publish`` brings is always taken
  whole, so a client that keeps up never loses lines to a burst that arrives
  in one read; and the group a read has started is being delivered (as an
  event being written), so it neither counts nor is dropped. A client
  therefore holds at most one source step plus the limits.
* **A read takes at most ``max_bytes``** (``Subscription.next``): what the
  client's writer has not asked for yet stays in the bounded queue, where an
  overflow can drop it, instead of in one huge event held per client. A
  client that falls behind therefore overflows its own queue within seconds
  and then sees the present.
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
* **Push mode** (``FanOut.push_directly``): a subscription whose client keeps
  up, with no filter, may skip its queue: ``publish`` frames the group once
  per ``DirectTarget.key`` (format, redaction, HTTP chunking) and writes the
  bytes to every such client's socket itself (``streams.http.push``), so a
  delivery costs one ``send``, not a task wake-up and a generator chain. A
  client whose socket cannot take a frame at once, or a group larger than
  ``PUSH_MAX_BYTES``, drops back to its queue (the group is queued, or was
  written and the rest is Twisted's to flush), and its producer takes over
  until it has caught up. Idle pushed clients get their heartbeats from one
  timer per fan-out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast, overload

from streams import conf
from streams.http.push import WriteResult
from streams.logs.lines import LogCursor, LogLine

logger = logging.getLogger(__name__)

#: Called with every batch a fan-out publishes (on the event loop; must not block).
Observer = Callable[["LogBatch"], None]
#: The source's test "this line's cursor was already delivered to the client".
SeenTest = Callable[[LogCursor], bool]

#: Text bytes per slice of a published batch (``LogBatch.slices``): small
#: against the 56 KiB cap of an SSE event's data, large enough that a burst's
#: encoding is a few dozen calls per MiB, not one per line.
SLICE_BYTES: Final = 16 * 1024
#: asyncio may run a timer up to its clock's resolution early.
_TIMER_SLACK: Final = 0.001
#: The largest group (text bytes of one publish) written in push mode: a burst
#: goes through the client's bounded queue, a read at a time, where a client
#: that cannot keep up overflows and sees the present.
PUSH_MAX_BYTES: Final = 2 * SLICE_BYTES


def text_size(lines: Sequence[LogLine]) -> int:
    """The bytes the lines take as text (one newline each): what queues are bounded by.

    Characters, not UTF-8 bytes: the same for ASCII logs, and cheap.
    """
    return sum(len(line.text) for line in lines) + len(lines)


def slice_lines(lines: tuple[LogLine, ...], max_bytes: int) -> list[tuple[LogLine, ...]]:
    """``lines`` cut into runs of about ``max_bytes`` of text, in order.

    A run ends at the first entry header (a line that is not a continuation)
    after ``max_bytes``, so a traceback stays with its header, or at twice
    ``max_bytes`` whatever comes; one line longer than that is a run alone.
    """
    runs: list[tuple[LogLine, ...]] = []
    begin = size = 0
    for index, line in enumerate(lines):
        if index > begin and (
            (size >= max_bytes and not line.continuation) or size >= 2 * max_bytes
        ):
            runs.append(lines[begin:index])
            begin, size = index, 0
        size += len(line.text) + 1
    if begin < len(lines) or not runs:
        runs.append(lines[begin:])
    return runs


class LogBatch:
    """Lines pushed together to every subscriber; immutable, encoded once per format."""

    # ``__weakref__``: a redacted twin is cached beside it (``streams.logs.redacted``).
    __slots__ = ("__weakref__", "_encoded", "cursor", "lines", "notice", "size")

    def __init__(
        self, lines: tuple[LogLine, ...], cursor: LogCursor, notice: str | None = None
    ) -> None:
        self.lines = lines
        self.cursor = cursor
        self.notice = notice
        self.size = text_size(lines)
        self._encoded: dict[str, Any] = {}

    def encoded[T](self, key: str, encode: Callable[[tuple[LogLine, ...]], T]) -> T:
        """``encode(lines)``, computed on first use and shared by every subscriber.

        ``key`` names the encoding (one key, one ``encode``: the cache is
        not typed per key).
        """
        value = self._encoded.get(key)
        if value is None:
            value = self._encoded[key] = encode(self.lines)
        return cast(T, value)

    def slices(self, max_bytes: int = SLICE_BYTES) -> tuple[LogBatch, ...]:
        """This batch as batches of about ``max_bytes`` of text (itself if it is small).

        The notice goes with the first slice; each slice's cursor is that of
        its last line, the last one keeps the batch's.
        """
        if self.size <= max_bytes:
            return (self,)
        runs = slice_lines(self.lines, max_bytes)
        if len(runs) == 1:
            return (self,)
        last = len(runs) - 1
        return tuple(
            LogBatch(
                run,
                self.cursor if index == last else run[-1].cursor,
                self.notice if index == 0 else None,
            )
            for index, run in enumerate(runs)
        )

    def __repr__(self) -> str:
        return f"LogBatch({len(self.lines)} lines, cursor={self.cursor}, notice={self.notice!r})"


@dataclass
class Delivery:
    """What a subscriber gets on one read: a skipped count first, then batches in order.

    With ``max_bytes`` the batches hold at most that much text (at least one
    batch, whatever its size); the rest stays queued.
    """

    skipped: int
    skipped_cursor: LogCursor | None
    batches: list[LogBatch]


@dataclass(frozen=True, slots=True)
class Group:
    """What one ``publish`` brought a subscriber: the slices of one batch, and their sizes."""

    batches: tuple[LogBatch, ...]
    lines: int
    size: int

    @classmethod
    def of(cls, batches: Sequence[LogBatch]) -> Group:
        return cls(tuple(batches), sum(len(b.lines) for b in batches), sum(b.size for b in batches))


class DirectTarget(Protocol):
    """Where a subscription in push mode writes its client's bytes (``streams.logs.push``)."""

    @property
    def key(self) -> Hashable:
        """Equal for clients that get equal bytes for equal groups (one framing per key)."""
        ...

    def frame(self, batches: tuple[LogBatch, ...]) -> bytes:
        """The bytes on the wire for one group, exactly as the client's producer would send them."""
        ...

    def heartbeat_frame(self) -> bytes | None:
        """The bytes of one heartbeat (``None``: the format has none)."""
        ...

    def write(self, data: bytes) -> WriteResult:
        """Write ``data`` at once, or refuse (``streams.http.push.DirectWriter.write``)."""
        ...


#: Frames built during one ``publish`` (or one heartbeat round), by ``DirectTarget.key``.
Frames = dict[Hashable, bytes | None]


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
        *,
        byte_limit: int | None = None,
    ) -> None:
        """``limit`` in lines; ``byte_limit`` in bytes of text (``STREAMBOARD_QUEUE_BYTES``)."""
        self.limit = max(1, limit)
        self.byte_limit = max(1, conf.queue_bytes() if byte_limit is None else byte_limit)
        self.start = start
        self._on_close = on_close
        # What each ``publish`` brought, oldest first: dropped whole on overflow.
        self._queue: deque[Group] = deque()
        # The rest of the group a read has started: being delivered, so neither
        # counted against the limits nor dropped (like an event being written).
        self._current: deque[LogBatch] = deque()
        self._queued_lines = 0
        self._queued_bytes = 0
        self._skipped = 0
        self._skipped_cursor: LogCursor | None = None
        self._wakeup = asyncio.Event()
        self._skip: tuple[LogCursor, SeenTest] | None = None
        self._idle_at: float | None = None
        self._idle_due = False
        self._idle_timer: asyncio.TimerHandle | None = None
        # Push mode (``FanOut.push_directly``): where to write, since when, the idle interval.
        self._direct: DirectTarget | None = None
        self._direct_since = 0.0
        self._direct_idle: float | None = None
        self._on_direct_end: Callable[[Subscription], None] | None = None
        self.closed = False

    # -- fed by the fan-out, on the event loop --------------------------------

    def push(self, batch: LogBatch) -> None:
        self.push_group(Group.of((batch,)))

    def push_all(self, batches: Sequence[LogBatch]) -> None:
        """Queue what one ``publish`` brought (the slices of one batch), taken whole."""
        self.push_group(Group.of(batches))

    def push_group(self, group: Group, frames: Frames | None = None) -> None:
        """``push_all`` of a group the fan-out built once for every subscriber.

        In push mode the group is written to the client instead (``frames``
        shares its framing between the subscribers of one ``publish``), unless
        the client cannot take it at once: then it leaves push mode, and a
        group that was not written is queued as usual.
        """
        if self._direct is not None and self._write_direct(group, frames):
            return
        if self._skip is not None:
            group = Group.of(self._unseen(group.batches))
        if not group.batches:
            return
        if self._queue and (
            self._queued_lines + group.lines > self.limit
            or self._queued_bytes + group.size > self.byte_limit
        ):
            # Overflow: drop what is queued and continue from the present. What
            # arrives now is always taken: it is shared by every subscriber (and
            # bounded by the source's step), so a client that keeps up never
            # loses lines to a burst that arrives in one read.
            dropped = [b for queued in self._queue for b in queued.batches if b.lines]
            self._skipped += self._queued_lines
            if dropped:
                self._skipped_cursor = dropped[-1].cursor
            self._queue.clear()
            self._queued_lines = self._queued_bytes = 0
        self._queue.append(group)
        self._queued_lines += group.lines
        self._queued_bytes += group.size
        self._wakeup.set()

    def _write_direct(self, group: Group, frames: Frames | None) -> bool:
        """Write ``group`` in push mode; ``False`` if it was not written (it must be queued)."""
        target = cast(DirectTarget, self._direct)
        if group.size > PUSH_MAX_BYTES:
            self.end_direct()
            return False
        key = target.key
        data = frames.get(key) if frames is not None else None
        if data is None:
            try:
                data = target.frame(group.batches)
            except Exception:
                # Not in the source's task: the client's own producer meets the
                # same failure on its path, and its response is aborted.
                self.end_direct()
                return False
            if frames is not None:
                frames[key] = data
        result = target.write(data)
        if result is WriteResult.SENT:
            return True
        self.end_direct()  # behind, or refused: the producer takes over
        return result is WriteResult.BEHIND

    def beat_direct(self, frames: Frames) -> None:
        """Write a heartbeat in push mode (the fan-out's timer found this client idle)."""
        target = self._direct
        if target is None:
            return
        key = ("heartbeat", target.key)
        if key not in frames:
            frames[key] = target.heartbeat_frame()
        data = frames[key]
        if data is not None and target.write(data) is not WriteResult.SENT:
            self.end_direct()

    @property
    def direct(self) -> bool:
        """Whether the subscription is in push mode."""
        return self._direct is not None

    def can_push(self) -> bool:
        """Whether push mode may start: nothing queued or being delivered, nothing to skip."""
        return not (self.closed or self._skip is not None or self.pending())

    def begin_direct(
        self,
        target: DirectTarget,
        idle: float | None,
        now: float,
        on_end: Callable[[Subscription], None],
    ) -> None:
        """Enter push mode (``FanOut.push_directly``); ``on_end`` runs when it ends."""
        self._direct = target
        self._direct_since = now
        self._direct_idle = idle
        self._on_direct_end = on_end

    def end_direct(self) -> None:
        """Leave push mode (idempotent) and wake the producer, which takes over."""
        if self._direct is None:
            return
        self._direct = None
        on_end, self._on_direct_end = self._on_direct_end, None
        if on_end is not None:
            on_end(self)
        self._wakeup.set()

    def _unseen(self, batches: Sequence[LogBatch]) -> list[LogBatch]:
        kept = []
        for batch in batches:
            if self._skip is not None and batch.lines:
                batch = self._without_seen(batch, *self._skip)
                if not batch.lines:
                    continue
            kept.append(batch)
        return kept

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
        """Lines queued and not yet being delivered (what the line limit bounds)."""
        return self._queued_lines

    @property
    def queued_bytes(self) -> int:
        """Bytes of text queued and not yet being delivered (what the byte limit bounds)."""
        return self._queued_bytes

    @overload
    async def next(self, idle: None = None, max_bytes: int | None = None) -> Delivery: ...
    @overload
    async def next(self, idle: float | None, max_bytes: int | None = None) -> Delivery | None: ...

    async def next(
        self, idle: float | None = None, max_bytes: int | None = None
    ) -> Delivery | None:
        """What is queued now, up to ``max_bytes`` of text; waits only while nothing is.

        ``None`` after ``idle`` seconds with nothing queued: the wait is on
        an event, not on the queue, so timing out loses nothing. A skipped
        count comes after the rest of a group being delivered (the lines it
        counts are newer) and before anything queued after the overflow.
        """
        if not self.pending():
            if idle is None:
                await self.wait()
            elif not await self._wait_or_idle(idle):
                return None
        skipped, skipped_cursor = 0, None
        current = self._current
        if not current:
            skipped, skipped_cursor = self._skipped, self._skipped_cursor
            self._skipped, self._skipped_cursor = 0, None
            queue = self._queue
            if max_bytes is None or self._queued_bytes <= max_bytes:
                # The usual case, a client that keeps up: everything, at once.
                taken = [batch for group in queue for batch in group.batches]
                queue.clear()
                self._queued_lines = self._queued_bytes = 0
                return Delivery(skipped, skipped_cursor, taken)
        taken = []
        size = 0
        while True:
            if not current:
                if not self._queue or self._skipped:
                    break
                head = self._queue[0].batches[0]
                if max_bytes is not None and taken and size + head.size > max_bytes:
                    break  # not started: it stays queued (and droppable)
                group = self._queue.popleft()
                self._queued_lines -= group.lines
                self._queued_bytes -= group.size
                current.extend(group.batches)
            while current and (
                max_bytes is None or not taken or size + current[0].size <= max_bytes
            ):
                batch = current.popleft()
                taken.append(batch)
                size += batch.size
            if current:
                break
        return Delivery(skipped, skipped_cursor, taken)

    async def _wait_or_idle(self, idle: float) -> bool:
        """Wait until something is queued; ``False`` once ``idle`` seconds pass with nothing.

        One timer per idle period, not one per wait: a client that gets an
        event every 100 ms would otherwise arm and cancel a timer for each
        (a heap push and a handle per client per event). The timer, when it
        fires, re-arms itself for the current wait's deadline if a newer
        wait began meanwhile.
        """
        loop = asyncio.get_running_loop()
        self._idle_at = loop.time() + idle
        self._idle_due = False
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(self._idle_at, self._idle_check, loop)
        try:
            while not self.pending():
                if self._idle_due:
                    return False
                self._wakeup.clear()
                await self._wakeup.wait()
            return True
        finally:
            self._idle_at = None
            self._idle_due = False

    def _idle_check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._idle_timer = None
        at = self._idle_at
        if at is None or self.closed:
            return  # not waiting: the next wait arms a timer
        if loop.time() >= at - _TIMER_SLACK:
            self._idle_due = True
            self._wakeup.set()
        else:
            self._idle_timer = loop.call_at(at, self._idle_check, loop)

    def pending(self) -> bool:
        return bool(self._current or self._queue or self._skipped)

    async def wait_direct(self) -> None:
        """Sleep until push mode ends or something is queued (``FanOut.push_directly``)."""
        self._wakeup.clear()
        if self._direct is not None and not self.pending():
            await self._wakeup.wait()

    async def wait(self) -> None:
        """Wait until something is queued (the overview peeks without reading)."""
        while not self.pending():
            self._wakeup.clear()
            await self._wakeup.wait()

    def discard(self) -> None:
        """Forget everything queued (and the skipped count)."""
        self._queue.clear()
        self._current.clear()
        self._queued_lines = self._queued_bytes = 0
        self._skipped = 0
        self._skipped_cursor = None

    def release(self) -> None:
        """The history before ``start`` has been read: free what it held (nothing here)."""

    def close(self) -> None:
        """Leave the fan-out (idempotent); a source may stop with its last subscriber."""
        if self.closed:
            return
        self.closed = True
        self.end_direct()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
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
        # Push mode: the subscriptions in it, when the last publish was, the heartbeat timer.
        self._direct: set[Subscription] = set()
        self._published_at = 0.0
        self._beat: asyncio.TimerHandle | None = None
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
        subscription.end_direct()
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
        """Hand ``batch`` to every observer, then its slices to every subscriber's queue."""
        for observer in list(self._observers):
            try:
                observer(batch)
            except Exception:
                logger.exception("log observer %r failed", observer)
        group = Group.of(batch.slices())  # one for every subscriber
        frames: Frames = {}  # and each push-mode framing once
        if self._direct:
            self._published_at = asyncio.get_running_loop().time()
        for subscription in list(self._subscriptions):
            subscription.push_group(group, frames)

    @property
    def direct_count(self) -> int:
        """How many subscriptions are in push mode now."""
        return len(self._direct)

    async def push_directly(
        self, subscription: Subscription, target: DirectTarget, idle: float | None
    ) -> None:
        """Deliver ``subscription``'s groups straight to ``target`` while its client keeps up.

        Returns once the subscription is back on its queue (it fell behind,
        a burst came, or it closed); at once if push mode cannot start (see
        ``Subscription.can_push``). The caller's task sleeps meanwhile: no
        wake-up per event. ``idle``: heartbeat interval, from this fan-out's
        one timer.
        """
        if subscription not in self._subscriptions or not subscription.can_push():
            return
        loop = asyncio.get_running_loop()
        subscription.begin_direct(target, idle, loop.time(), self._direct.discard)
        self._direct.add(subscription)
        if idle is not None and (self._beat is None or self._beat.when() > loop.time() + idle):
            self._arm_beat(loop)
        try:
            while subscription.direct:
                await subscription.wait_direct()
        finally:
            subscription.end_direct()

    def _arm_beat(self, loop: asyncio.AbstractEventLoop) -> None:
        """One timer for every pushed client's heartbeat, at the earliest one due.

        Re-armed when it fires (not per publish): a source that publishes
        often costs one idle check per heartbeat interval.
        """
        due = min(
            (
                max(self._published_at, s._direct_since) + s._direct_idle
                for s in self._direct
                if s._direct_idle is not None
            ),
            default=None,
        )
        if due is None:
            return
        if self._beat is not None:
            if self._beat.when() <= due:
                return
            self._beat.cancel()
        self._beat = loop.call_at(due, self._beat_due, loop)

    def _beat_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._beat = None
        now = loop.time()
        frames: Frames = {}
        for subscription in list(self._direct):
            idle = subscription._direct_idle
            since = max(self._published_at, subscription._direct_since)
            if idle is not None and now >= since + idle - _TIMER_SLACK:
                subscription._direct_since = now
                subscription.beat_direct(frames)
        self._arm_beat(loop)
