"""One shared tailer per log file per process, fanning lines out to bounded queues.

``Tailer`` follows a file like ``tail -F``: the file may not exist yet, may be
truncated, may be rotated (renamed and recreated). It reads with
``os.pread`` (no shared file position), holds a partial last line until its
line break arrives, and after a rotation drains the rest of the old inode
before switching, so no line is lost or read twice.

Wake-ups come from inotify on the file's directory, registered on the event
loop (``streams.logs.files.inotify``: no thread, no latency added); where that is not
available, from ``watchfiles`` in a daemon thread. A safety poll runs every
``SAFETY_POLL_SECONDS`` (more often while nothing watches, e.g. the directory
does not exist yet). All of this is per file, not per client: idle CPU does
not grow with the number of clients. Reads of a few KiB happen on the loop
(cheaper than a hop to a thread and back); bigger ones in a worker thread.

Fan-out: every ``Subscription`` has a queue bounded in lines. The tailer
pushes shared, immutable ``LogBatch`` objects (each encoded at most once per
format, cached on the batch); a subscriber whose queue would overflow drops
what it holds, counts it, and continues from the present: its next read
starts with the skipped count.

Positions: ``Tailer.position`` is the cursor just after the last line pushed
to subscribers. A new subscriber is registered and handed that position in
the same step on the event loop, so lines up to it come from the file
(backfill or a resume) and lines after it from the queue: no gap, no
duplicate. The subscription keeps its own duplicate of the file descriptor
of that position, so a rotation in between does not make it read the wrong
file.

Registry: ``get_tailer(path)`` returns the tailer for (absolute path, running
event loop); it starts on the first subscribe and stops (and leaves the
registry) when its last subscriber leaves. The path is made absolute, not
resolved: a symlink that is repointed is followed like a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, overload

from streams import conf
from streams.logs.files import inotify
from streams.logs.lines import Cursor, LineParser, LogLine

logger = logging.getLogger(__name__)

#: Bytes read per ``pread``.
READ_CHUNK: Final = 256 * 1024
#: Bytes read per tailer step before the lines are pushed (then it reads on at once).
STEP_BYTES: Final = 1024 * 1024
#: A "line" this long without a line break is pushed as it is.
MAX_LINE_BYTES: Final = 1024 * 1024
#: Steps with at most this much new data read on the event loop, not in a thread.
INLINE_READ_BYTES: Final = 64 * 1024
#: How far back from its start a backfill looks for its lines.
MAX_BACKFILL_BYTES: Final = 8 * 1024 * 1024
#: Lines per batch read from the file for a backfill or a resume.
RANGE_BATCH_LINES: Final = 1000
#: Poll interval while inotify watches the file's directory (a safety net) and without it.
SAFETY_POLL_SECONDS: Final = 1.0
FALLBACK_POLL_SECONDS: Final = 0.25
#: watchfiles' grouping: at most this long (ms) under constant writes, this quiet (ms) otherwise.
WATCH_DEBOUNCE_MS: Final = 50
WATCH_STEP_MS: Final = 10
#: The window of ``LevelRates``.
RATE_WINDOW_SECONDS: Final = 60

NOTICE_TRUNCATED: Final = "The file was truncated; following it from its start."
NOTICE_ROTATED: Final = "The file was rotated; following the new file from its start."


#: How a tailer learns that its file changed (besides its safety poll).
Watcher = Literal["auto", "inotify", "watchfiles", "poll"]


class LogBatch:
    """Lines pushed together to every subscriber; immutable, encoded once per format."""

    __slots__ = ("_encoded", "cursor", "lines", "notice")

    def __init__(self, lines: tuple[LogLine, ...], cursor: Cursor, notice: str | None = None):
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
    skipped_cursor: Cursor | None
    batches: list[LogBatch]


class LevelRates:
    """Lines per level over the last minute, in one-second buckets (the overview)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: deque[tuple[int, Counter[str]]] = deque()

    def add(self, lines: tuple[LogLine, ...]) -> None:
        now = int(self._clock())
        if not self._buckets or self._buckets[-1][0] != now:
            self._buckets.append((now, Counter()))
        counter = self._buckets[-1][1]
        for line in lines:
            if not line.continuation:
                counter[line.level] += 1
        self._expire(now)

    def per_minute(self) -> Counter[str]:
        self._expire(int(self._clock()))
        total: Counter[str] = Counter()
        for _, counter in self._buckets:
            total.update(counter)
        return total

    def _expire(self, now: int) -> None:
        while self._buckets and self._buckets[0][0] <= now - RATE_WINDOW_SECONDS:
            self._buckets.popleft()


class Subscription:
    """One client's view of a tailer: a bounded queue and the position it started at."""

    def __init__(self, tailer: Tailer, limit: int, start: Cursor, fd: int | None) -> None:
        self.tailer = tailer
        self.limit = max(1, limit)
        self.start = start
        self._fd = fd
        self._queue: deque[LogBatch] = deque()
        self._queued_lines = 0
        self._skipped = 0
        self._skipped_cursor: Cursor | None = None
        self._wakeup = asyncio.Event()
        # Lines of this inode up to this offset were already delivered (a resume ahead of us).
        self.skip_until: Cursor | None = None
        self.closed = False

    # -- fed by the tailer, on the event loop ---------------------------------

    def push(self, batch: LogBatch) -> None:
        if self.skip_until is not None and batch.lines:
            batch = self._without_seen(batch, self.skip_until)
            if not batch.lines:
                return
        size = len(batch.lines)
        if self._queue and self._queued_lines + size > self.limit:
            # Overflow: drop what is queued and continue from the present. A
            # batch alone is always taken: it is shared by every subscriber (and
            # bounded by the tailer's step), so a client that keeps up never
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

    def _without_seen(self, batch: LogBatch, seen: Cursor) -> LogBatch:
        lines = tuple(
            line
            for line in batch.lines
            if line.cursor.inode != seen.inode or line.cursor.offset > seen.offset
        )
        last = batch.lines[-1].cursor
        if last.inode != seen.inode or last.offset >= seen.offset:
            self.skip_until = None  # past the cursor: nothing more to skip
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
        self._queue.clear()
        self._queued_lines = 0
        self._skipped = 0
        self._skipped_cursor = None
        return delivery

    def pending(self) -> bool:
        return bool(self._queue or self._skipped)

    async def wait(self) -> None:
        """Wait until something is queued (the overview peeks without reading)."""
        while not self.pending():
            self._wakeup.clear()
            await self._wakeup.wait()

    def discard(self) -> None:
        self._queue.clear()
        self._queued_lines = 0
        self._skipped = 0
        self._skipped_cursor = None

    async def backfill(self, count: int) -> AsyncIterator[list[LogLine]]:
        """The last ``count`` complete lines before ``start``, in batches, oldest first."""
        if count <= 0 or self._fd is None or self.start.offset == 0:
            return
        fd = os.dup(self._fd)
        try:
            begin = await asyncio.to_thread(_find_backfill_start, fd, self.start.offset, count)
            async for lines in _read_range(fd, self.start.inode, begin, self.start.offset):
                yield lines
        finally:
            os.close(fd)

    async def since(self, after: Cursor) -> tuple[str | None, AsyncIterator[list[LogLine]]]:
        """Lines after ``after`` up to ``start``, and a notice when that cursor is gone.

        If the cursor's file is the current one, exactly the lines after it;
        if it was rotated away or truncated below it, the current file from
        its start, with a notice saying so.
        """
        start = self.start
        if after == Cursor.origin() or start == Cursor.origin():
            notice = None if after == Cursor.origin() else NOTICE_CURSOR_GONE
            return notice, self._range(0, start.offset)
        if after.inode == start.inode:
            if after.offset <= start.offset:
                return None, self._range(after.offset, start.offset)
            size = os.fstat(self._fd).st_size if self._fd is not None else 0
            if after.offset <= size:
                # The cursor is ahead of this process's tailer (another process,
                # or lines not read yet): skip live lines up to it.
                self.skip_until = after
                return None, _no_lines()
        return NOTICE_CURSOR_GONE, self._range(0, start.offset)

    def _range(self, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
        if self._fd is None or begin >= end:
            return _no_lines()
        return self._range_dup(begin, end)

    async def _range_dup(self, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
        assert self._fd is not None
        fd = os.dup(self._fd)
        try:
            async for lines in _read_range(fd, self.start.inode, begin, end):
                yield lines
        finally:
            os.close(fd)

    def release_file(self) -> None:
        """Close this subscription's descriptor once the backfill or resume has been read.

        Live lines come from the queue; holding a descriptor per client for
        the rest of a long stream would cost one per connection for nothing.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.release_file()
        self.tailer.unsubscribe(self)


NOTICE_CURSOR_GONE: Final = (
    "The position you resumed from no longer exists (the file was rotated or truncated); "
    "showing the current file from its start."
)


async def _no_lines() -> AsyncIterator[list[LogLine]]:
    return
    yield


def _find_backfill_start(fd: int, end: int, count: int) -> int:
    """The offset of the first of the last ``count`` lines ending at or before ``end``.

    Looks back at most ``MAX_BACKFILL_BYTES``: a file of huge lines gives fewer
    lines rather than a read of unbounded size.
    """
    floor = max(0, end - MAX_BACKFILL_BYTES)
    newlines = 0
    start = end
    position = end
    while position > floor:
        size = min(READ_CHUNK, position - floor)
        block = os.pread(fd, size, position - size)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            absolute = position - size + index
            # ``end`` is just after a line break: that one ends the last line.
            if absolute < end - 1:
                newlines += 1
                start = absolute + 1
                if newlines == count:
                    return start
        position -= size
    return 0 if floor == 0 else start


async def _read_range(fd: int, inode: int, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
    """Complete lines in ``[begin, end)`` of ``fd``, parsed, in batches of bounded size.

    Reading and parsing happen in a worker thread, a chunk at a time, so a
    client's backfill or resume does not hold up the event loop.
    """
    reader = _RangeReader(fd, inode, begin, end)
    while True:
        lines = await asyncio.to_thread(reader.read)
        if lines is None:
            return
        if lines:
            yield lines


class _RangeReader:
    """The state of one ``_read_range``: its position, the unfinished line, the parser."""

    def __init__(self, fd: int, inode: int, begin: int, end: int) -> None:
        self.fd = fd
        self.inode = inode
        self.position = begin
        self.end = end
        self.rest = b""
        self.parser = LineParser()
        self.pending: list[LogLine] = []

    def read(self) -> list[LogLine] | None:
        """Up to ``RANGE_BATCH_LINES`` lines; ``None`` at the end of the range."""
        while len(self.pending) < RANGE_BATCH_LINES and self.position < self.end:
            chunk = os.pread(self.fd, min(READ_CHUNK, self.end - self.position), self.position)
            if not chunk:
                self.end = self.position
                break
            offset = self.position - len(self.rest)
            self.position += len(chunk)
            pieces = (self.rest + chunk).split(b"\n")
            self.rest = pieces.pop()
            for piece in pieces:
                offset += len(piece) + 1
                self.pending.append(self.parser.parse(_decode(piece), Cursor(self.inode, offset)))
        if not self.pending:
            return None
        lines = self.pending[:RANGE_BATCH_LINES]
        del self.pending[:RANGE_BATCH_LINES]
        return lines


def _decode(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")


@dataclass
class _StepResult:
    lines: list[LogLine] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)  # (index in lines, text)
    more: bool = False


class _FileState:
    """The worker thread's view of the file (touched only by one step at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.inode = 0
        self.read_offset = 0  # bytes consumed, including ``partial``
        self.partial = b""
        self.parser = LineParser()

    @property
    def line_offset(self) -> int:
        return self.read_offset - len(self.partial)

    def cursor(self) -> Cursor:
        return Cursor(self.inode, self.line_offset) if self.fd is not None else Cursor.origin()

    def open_at_end(self) -> None:
        """First open: start after the last complete line (a partial one is read later)."""
        fd = self._open()
        if fd is None:
            return
        size = os.fstat(fd).st_size
        floor = max(0, size - MAX_LINE_BYTES)
        # Without a line break in the last MAX_LINE_BYTES, start at the end.
        start = 0 if floor == 0 else size
        position = size
        while position > floor:
            block_size = min(READ_CHUNK, position - floor)
            block = os.pread(fd, block_size, position - block_size)
            index = block.rfind(b"\n")
            if index >= 0:
                start = position - block_size + index + 1
                break
            position -= block_size
        self._switch(fd, start)

    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None

    def _switch(self, fd: int, offset: int) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        self.read_offset = offset
        self.partial = b""

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def small_step(self) -> bool:
        """Whether the next step reads little enough to run on the event loop."""
        if self.fd is None:
            return False
        try:
            return 0 <= os.fstat(self.fd).st_size - self.read_offset <= INLINE_READ_BYTES
        except OSError:
            return False

    def step(self) -> _StepResult:
        result = _StepResult()
        if self.fd is None:
            fd = self._open()
            if fd is None:
                return result
            self._switch(fd, 0)
        assert self.fd is not None
        try:
            current = os.stat(self.path).st_ino
        except OSError:
            current = None  # renamed away, not recreated yet: keep reading the old inode
        if os.fstat(self.fd).st_size < self.read_offset:
            self.read_offset = 0
            self.partial = b""
            result.notices.append((len(result.lines), NOTICE_TRUNCATED))
        budget = STEP_BYTES
        budget -= self._read(result, budget)
        if budget <= 0:
            result.more = True
            return result
        if current is not None and current != self.inode:
            # Rotated: the old inode is drained (above); its unfinished line is final.
            self._read(result, None)
            if self.partial:
                self._emit(result, self.partial)
                self.partial = b""
            fd = self._open()
            if fd is not None:
                self._switch(fd, 0)
                result.notices.append((len(result.lines), NOTICE_ROTATED))
                self._read(result, budget)
                result.more = True
        return result

    def _read(self, result: _StepResult, budget: int | None) -> int:
        assert self.fd is not None
        total = 0
        while budget is None or total < budget:
            chunk = os.pread(self.fd, READ_CHUNK, self.read_offset)
            if not chunk:
                break
            total += len(chunk)
            base = self.line_offset
            data = self.partial + chunk
            self.read_offset += len(chunk)
            pieces = data.split(b"\n")
            self.partial = pieces.pop()
            offset = base
            for piece in pieces:
                offset += len(piece) + 1
                self._emit_at(result, piece, offset)
            if len(self.partial) > MAX_LINE_BYTES:
                self._emit(result, self.partial)
                self.partial = b""
        return total

    def _emit(self, result: _StepResult, raw: bytes) -> None:
        self._emit_at(result, raw, self.read_offset)

    def _emit_at(self, result: _StepResult, raw: bytes, offset: int) -> None:
        result.lines.append(self.parser.parse(_decode(raw), Cursor(self.inode, offset)))


class Tailer:
    """Follows one file and fans its lines out to subscribers (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        watcher: Watcher = "auto",
        queue_limit: int | None = None,
        on_stop: Callable[[Tailer], None] | None = None,
    ) -> None:
        self.path = path
        if watcher == "auto":
            watcher = "inotify" if inotify.available() else "watchfiles"
        self.watcher = watcher
        self.queue_limit = queue_limit
        self._on_stop = on_stop
        self._subscribers: set[Subscription] = set()
        self._state = _FileState(path)
        self._position = Cursor.origin()
        self._position_fd: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch_thread: threading.Thread | None = None
        self._inotify: inotify.DirectoryWatch | None = None
        self.started = False
        self._closing: asyncio.Future[None] | None = None
        self._step: asyncio.Future[_StepResult] | None = None
        self._wake = asyncio.Event()
        self._stop_watch = threading.Event()
        self.watching = False
        self.rates = LevelRates()
        self.latest: LogLine | None = None
        self.stopped = False
        self.steps = 0  # reads done (tests wait on it)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def position(self) -> Cursor:
        return self._position

    def subscribe(self) -> Subscription:
        """Register a subscriber at the current position (starting the tailer if needed).

        Synchronous on purpose: registering and taking the position happen in
        one step of the event loop, so no batch can slip in between. The first
        subscriber opens the file here (an open and one read of its last block).
        """
        if self.stopped:
            raise RuntimeError("this tailer has stopped; get a new one from get_tailer()")
        if not self.started:
            self.started = True
            self._state.open_at_end()
            self._publish_position()
            self._task = asyncio.create_task(self._run(), name=f"tail {self.path}")
            if self.watcher == "inotify":
                self._watch_inotify()
            elif self.watcher == "watchfiles":
                self._watch_thread = threading.Thread(
                    target=self._watch,
                    args=(asyncio.get_running_loop(),),
                    name=f"watch {self.path}",
                    daemon=True,
                )
                self._watch_thread.start()
        limit = self.queue_limit if self.queue_limit is not None else conf.queue_size()
        fd = os.dup(self._position_fd) if self._position_fd is not None else None
        subscription = Subscription(self, limit, self._position, fd)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        if not self._subscribers and not self.stopped and self.started:
            self.stop()

    def stop(self) -> None:
        """Stop following (called when the last subscriber leaves); cleanup finishes in a task."""
        if self.stopped:
            return
        self.stopped = True
        if self._on_stop is not None:
            self._on_stop(self)
        self._stop_watch.set()
        if self._inotify is not None:
            self._inotify.close()
        if self._task is not None:
            self._task.cancel()
        self._closing = asyncio.ensure_future(self._shutdown())

    async def _shutdown(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._step is not None:
            # The worker thread may still be reading: close its file only after it returns.
            with contextlib.suppress(BaseException):
                await self._step
        self._state.close()
        if self._position_fd is not None:
            os.close(self._position_fd)
            self._position_fd = None

    async def wait_closed(self) -> None:
        """Wait until the file descriptors are closed (after ``stop``)."""
        if self._closing is not None:
            await self._closing

    def _publish_position(self) -> None:
        state = self._state
        cursor = state.cursor()
        if state.fd is not None and (
            self._position_fd is None or cursor.inode != self._position.inode
        ):
            if self._position_fd is not None:
                os.close(self._position_fd)
            self._position_fd = os.dup(state.fd)
        elif state.fd is None and self._position_fd is not None:
            os.close(self._position_fd)
            self._position_fd = None
        self._position = cursor

    def _watch_inotify(self) -> None:
        """(Re)start the inotify watch of the file's directory, if it exists."""
        if self._inotify is not None and self._inotify.alive:
            return
        self.watching = False
        try:
            self._inotify = inotify.DirectoryWatch(
                self.path.parent, self.path.name, self._wake.set, asyncio.get_running_loop()
            )
        except OSError:
            self._inotify = None  # no directory yet (or no permission): poll
            return
        self.watching = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if self.watcher == "inotify" and not self.watching:
                self._watch_inotify()
                self.watching = self._inotify is not None and self._inotify.alive
            try:
                if self._state.small_step():
                    # A few KiB to read: cheaper here than a hop to a thread and back.
                    result = self._state.step()
                else:
                    self._step = asyncio.wrap_future(loop.run_in_executor(None, self._state.step))
                    result = await asyncio.shield(self._step)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("tailing %s failed; retrying", self.path)
                result = _StepResult()
            self._step = None
            self.steps += 1
            if self._inotify is not None and not self._inotify.alive:
                self.watching = False
            self._deliver(result)
            if result.more:
                continue
            timeout = SAFETY_POLL_SECONDS if self.watching else FALLBACK_POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _deliver(self, result: _StepResult) -> None:
        lines = result.lines
        notices = dict(result.notices)
        batches: list[LogBatch] = []
        start = 0
        for index in sorted({*notices, len(lines)}):
            if index > start:
                chunk = tuple(lines[start:index])
                batches.append(LogBatch(chunk, chunk[-1].cursor))
                start = index
            if index in notices:
                cursor = lines[index - 1].cursor if index else self._position
                batches.append(LogBatch((), cursor, notices[index]))
        self._publish_position()
        if lines:
            self.rates.add(tuple(lines))
            self.latest = next(
                (line for line in reversed(lines) if not line.continuation), lines[-1]
            )
        for batch in batches:
            for subscriber in list(self._subscribers):
                subscriber.push(batch)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the reader on inotify events for the file (runs in a daemon thread).

        A daemon thread of its own, not ``awatch`` in the loop's executor: a
        server that exits while a tailer runs must not wait for the watcher.
        """
        from watchfiles import watch

        directory = self.path.parent
        name = self.path.name

        def relevant(_change: object, changed: str) -> bool:
            return os.path.basename(changed) == name

        def wake() -> None:
            self._wake.set()

        stop = self._stop_watch
        while not stop.is_set():
            if not directory.is_dir():
                self.watching = False
                stop.wait(FALLBACK_POLL_SECONDS)
                continue
            try:
                self.watching = True
                for _changes in watch(
                    directory,
                    watch_filter=relevant,
                    debounce=WATCH_DEBOUNCE_MS,
                    step=WATCH_STEP_MS,
                    stop_event=stop,
                    recursive=False,
                    rust_timeout=0,
                    raise_interrupt=False,
                ):
                    loop.call_soon_threadsafe(wake)
            except RuntimeError:
                return  # the event loop is closed: the process is ending
            except Exception:
                logger.info("watching %s failed; polling instead", directory, exc_info=True)
                self.watching = False
                stop.wait(FALLBACK_POLL_SECONDS)
        self.watching = False


_tailers: dict[tuple[str, asyncio.AbstractEventLoop], Tailer] = {}


def get_tailer(path: Path) -> Tailer:
    """The running event loop's tailer for ``path`` (created, not started, if needed)."""
    key = (os.path.abspath(path), asyncio.get_running_loop())
    tailer = _tailers.get(key)
    if tailer is None or tailer.stopped:
        tailer = _tailers[key] = Tailer(Path(key[0]), on_stop=_forget(key))
    return tailer


def _forget(key: tuple[str, asyncio.AbstractEventLoop]) -> Callable[[Tailer], None]:
    def forget(tailer: Tailer) -> None:
        if _tailers.get(key) is tailer:
            del _tailers[key]

    return forget


def active_tailers() -> list[Tailer]:
    """The tailers running in this process (for tests and diagnostics)."""
    return list(_tailers.values())
