"""One shared tailer per log file per process: its lifecycle, its registry, its history.

``Tailer`` follows a file like ``tail -F`` (the reading itself, rotation and
truncation included, is ``streams.logs.files.reader``; the wake-ups are
``streams.logs.files.watch``) and publishes what it reads into a ``FanOut``
(``streams.logs.fanout``). All of this is per file, not per client: idle CPU
does not grow with the number of clients. Reads of a few KiB happen on the
loop (cheaper than a hop to a thread and back); bigger ones in a worker
thread.

Positions: ``Tailer.position`` is the cursor just after the last line
published. A new subscriber is registered and handed that position in the
same step on the event loop, so lines up to it come from the file (backfill
or a resume, ``FileSubscription``) and lines after it from the queue: no
gap, no duplicate. The subscription keeps its own duplicate of the file
descriptor of that position, so a rotation in between does not make it read
the wrong file; it is closed once that history has been read.

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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from streams import conf
from streams.logs.fanout import FanOut, LogBatch, Subscription
from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import (
    INLINE_READ_BYTES,
    FileReader,
    RangeReader,
    StepResult,
    ends_a_line,
    find_backfill_start,
    holds,
)
from streams.logs.files.watch import (
    FALLBACK_POLL_SECONDS,
    SAFETY_POLL_SECONDS,
    PollWatch,
    Watch,
    Watcher,
    WatchFactory,
    resolve,
    start_watch,
)
from streams.logs.lines import LogCursor, LogLine
from streams.logs.sources import Resume, SourceSubscription

logger = logging.getLogger(__name__)

NOTICE_CURSOR_GONE: Final = (
    "The position you resumed from no longer exists (the file was rotated or truncated); "
    "showing the current file from its start."
)


class Tailer:
    """Follows one file and publishes its lines to a fan-out (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        watcher: Watcher | WatchFactory = "auto",
        queue_limit: int | None = None,
        on_stop: Callable[[Tailer], None] | None = None,
    ) -> None:
        self.path = path
        self.watcher = resolve(watcher)
        self.queue_limit = queue_limit
        self.fanout = FanOut(Cursor.origin(), on_empty=self._last_left)
        self._on_stop = on_stop
        self._reader = FileReader(path)
        self._position_fd: int | None = None
        self._position_fingerprint = b""  # the bytes just before ``position``
        self._task: asyncio.Task[None] | None = None
        self._watch: Watch = PollWatch()
        self.started = False
        self._closing: asyncio.Future[None] | None = None
        self._step: asyncio.Future[StepResult] | None = None
        self._wake = asyncio.Event()
        self.stopped = False
        self.steps = 0  # reads done (tests wait on it)

    @property
    def subscriber_count(self) -> int:
        return self.fanout.subscriber_count

    @property
    def subscriptions(self) -> frozenset[Subscription]:
        return self.fanout.subscriptions

    @property
    def position(self) -> Cursor:
        position = self.fanout.position
        assert isinstance(position, Cursor)
        return position

    @property
    def watching(self) -> bool:
        """Whether changes to the file wake the tailer (else it polls more often)."""
        return self._watch.watching

    def subscribe(self) -> FileSubscription:
        """Register a subscriber at the current position (starting the tailer if needed).

        Synchronous on purpose: registering and taking the position happen in
        one step of the event loop, so no batch can slip in between. The first
        subscriber opens the file here (an open and one read of its last block).
        """
        if self.stopped:
            raise RuntimeError("this tailer has stopped; get a new one from get_tailer()")
        if not self.started:
            self._start()
        limit = self.queue_limit if self.queue_limit is not None else conf.queue_size()
        fd = os.dup(self._position_fd) if self._position_fd is not None else None
        subscription = FileSubscription(self, limit, self.position, fd, self._position_fingerprint)
        self.fanout.add(subscription)
        return subscription

    def _start(self) -> None:
        self.started = True
        self._reader.open_at_end()
        self._publish_position()
        self._task = asyncio.create_task(self._run(), name=f"tail {self.path}")
        self._watch = start_watch(
            self.watcher, self.path, self._wake.set, asyncio.get_running_loop()
        )

    def _last_left(self) -> None:
        if not self.stopped and self.started:
            self.stop()

    def stop(self) -> None:
        """Stop following (called when the last subscriber leaves); cleanup finishes in a task."""
        if self.stopped:
            return
        self.stopped = True
        if self._on_stop is not None:
            self._on_stop(self)
        self._watch.close()
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
        self._reader.close()
        if self._position_fd is not None:
            os.close(self._position_fd)
            self._position_fd = None

    async def wait_closed(self) -> None:
        """Wait until the file descriptors are closed (after ``stop``)."""
        if self._closing is not None:
            await self._closing

    def _publish_position(self) -> None:
        """Move the fan-out's position to the reader's, with a descriptor of that file."""
        reader = self._reader
        cursor = reader.cursor()
        if reader.fd is not None and (
            self._position_fd is None or cursor.inode != self.position.inode
        ):
            if self._position_fd is not None:
                os.close(self._position_fd)
            self._position_fd = os.dup(reader.fd)
        elif reader.fd is None and self._position_fd is not None:
            os.close(self._position_fd)
            self._position_fd = None
        self._position_fingerprint = reader.cursor_fingerprint()
        self.fanout.advance(cursor)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            self._watch.ensure()
            result = await self._read_step()
            self.steps += 1
            self._deliver(result)
            if result.more:
                continue
            timeout = SAFETY_POLL_SECONDS if self.watching else FALLBACK_POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _read_step(self) -> StepResult:
        """One reader step: on the loop when it is small, else in a worker thread."""
        try:
            if self._reader.small_step():
                # A few KiB to read: cheaper here than a hop to a thread and back
                # (bounded: a truncation found here rereads from the start).
                result = self._reader.step(INLINE_READ_BYTES)
            else:
                loop = asyncio.get_running_loop()
                self._step = asyncio.wrap_future(loop.run_in_executor(None, self._reader.step))
                result = await asyncio.shield(self._step)
        except asyncio.CancelledError:
            raise  # ``_step`` stays set: the shutdown waits for the thread before closing
        except Exception:
            logger.exception("tailing %s failed; retrying", self.path)
            result = StepResult()
        self._step = None
        return result

    def _deliver(self, result: StepResult) -> None:
        """Cut a step's lines into batches at its notices and publish them in order."""
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
                cursor = lines[index - 1].cursor if index else self.position
                batches.append(LogBatch((), cursor, notices[index]))
        self._publish_position()
        for batch in batches:
            self.fanout.publish(batch)


class FileSubscription(SourceSubscription):
    """A client of a tailer: the fan-out's queue, and the file up to its ``start``."""

    def __init__(
        self, tailer: Tailer, limit: int, start: Cursor, fd: int | None, fingerprint: bytes = b""
    ) -> None:
        super().__init__(limit, start, on_close=tailer.fanout.remove)
        self.tailer = tailer
        self.fanout = tailer.fanout
        self.start: Cursor = start
        self._fd = fd
        self._fingerprint = fingerprint

    def _start_holds(self) -> bool:
        """Whether the file still holds the bytes before ``start`` (one ``pread``).

        If not, it was truncated after the tailer published ``start`` and
        before it looked again: the queue will bring the truncation notice
        and the new content from its start, so there is no history to read
        (reading it would give the new content's bytes, mangled or twice).
        """
        return self._fd is None or holds(self._fd, self.start.offset, self._fingerprint)

    @property
    def holds_file(self) -> bool:
        """Whether this subscription still holds a descriptor (until its history is read)."""
        return self._fd is not None

    async def backfill(self, count: int) -> AsyncIterator[list[LogLine]]:
        """The last ``count`` complete lines before ``start``, in batches, oldest first."""
        if count <= 0 or self._fd is None or self.start.offset == 0 or not self._start_holds():
            return
        fd = os.dup(self._fd)
        try:
            begin = await asyncio.to_thread(find_backfill_start, fd, self.start.offset, count)
            async for lines in read_range(fd, self.start.inode, begin, self.start.offset):
                yield lines
        finally:
            os.close(fd)

    async def since(self, after: LogCursor) -> Resume:
        """Lines after ``after`` up to ``start``, and a notice when that cursor is gone.

        If the cursor's file is the current one, exactly the lines after it;
        if it was rotated away or truncated below it, the current file from
        its start, with a notice saying so. If the file was truncated after
        ``start`` was published, no history: the queue brings the truncation
        notice and the new content. A cursor other than ``start``
        that is not just after a line break (one ``pread``) is gone too: the
        file was truncated and regrew past it, and reading on from there
        would give a mangled line (a cursor carries no fingerprint; one that
        lands on a line break of the new content cannot be told apart). The
        rare cursor after a line cut at ``MAX_LINE_BYTES`` without its break
        is taken as gone too: the file again from its start, nothing mangled.
        """
        start = self.start
        origin = Cursor.origin()
        if not isinstance(after, Cursor):
            return Resume(NOTICE_CURSOR_GONE, self._range(0, start.offset), start)
        if not self._start_holds():
            return Resume(None, _no_lines(), start)  # the queue's truncation notice follows
        if after == origin or start == origin:
            notice = None if after == origin else NOTICE_CURSOR_GONE
            return Resume(notice, self._range(0, start.offset), start)
        if after.inode == start.inode:
            if after == start:
                return Resume(None, _no_lines(), start)
            fd = self._fd
            if fd is not None and not ends_a_line(fd, after.offset):
                return Resume(NOTICE_CURSOR_GONE, self._range(0, start.offset), start)
            if after.offset < start.offset:
                return Resume(None, self._range(after.offset, start.offset), start)
            size = os.fstat(fd).st_size if fd is not None else 0
            if after.offset <= size:
                # The cursor is ahead of this process's tailer (another process,
                # or lines not read yet): skip live lines up to it.
                self.skip_through(after, _seen_up_to(after))
                return Resume(None, _no_lines(), after)
        return Resume(NOTICE_CURSOR_GONE, self._range(0, start.offset), start)

    def _range(self, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
        if self._fd is None or begin >= end:
            return _no_lines()
        return self._range_dup(begin, end)

    async def _range_dup(self, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
        assert self._fd is not None
        fd = os.dup(self._fd)
        try:
            async for lines in read_range(fd, self.start.inode, begin, end):
                yield lines
        finally:
            os.close(fd)

    def release(self) -> None:
        """Close this subscription's descriptor once the backfill or resume has been read.

        Live lines come from the queue; holding a descriptor per client for
        the rest of a long stream would cost one per connection for nothing.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _seen_up_to(after: Cursor) -> Callable[[LogCursor], bool]:
    """The test "this line is at or before ``after`` in the same file"."""

    def seen(cursor: LogCursor) -> bool:
        return (
            isinstance(cursor, Cursor)
            and cursor.inode == after.inode
            and cursor.offset <= after.offset
        )

    return seen


async def _no_lines() -> AsyncIterator[list[LogLine]]:
    return
    yield


async def read_range(fd: int, inode: int, begin: int, end: int) -> AsyncIterator[list[LogLine]]:
    """Complete lines in ``[begin, end)`` of ``fd``, parsed, in batches of bounded size.

    Reading and parsing happen in a worker thread, a chunk at a time, so a
    client's backfill or resume does not hold up the event loop.
    """
    reader = RangeReader(fd, inode, begin, end)
    while True:
        lines = await asyncio.to_thread(reader.read)
        if lines is None:
            return
        if lines:
            yield lines


_tailers: dict[tuple[str, asyncio.AbstractEventLoop], Tailer] = {}


def get_tailer(path: Path) -> Tailer:
    """The running event loop's tailer for ``path`` (created, not started, if needed)."""
    key = (os.path.abspath(path), asyncio.get_running_loop())
    tailer = _tailers.get(key)
    if tailer is None or tailer.stopped:
        tailer = _tailers[key] = Tailer(Path(key[0]), on_stop=_forget(key))
    return tailer


def running_tailer(path: Path) -> Tailer | None:
    """The tailer following ``path`` on the running event loop, if any (none off the loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    tailer = _tailers.get((os.path.abspath(path), loop))
    return tailer if tailer is not None and tailer.started and not tailer.stopped else None


def _forget(key: tuple[str, asyncio.AbstractEventLoop]) -> Callable[[Tailer], None]:
    def forget(tailer: Tailer) -> None:
        if _tailers.get(key) is tailer:
            del _tailers[key]

    return forget


def active_tailers() -> list[Tailer]:
    """The tailers running in this process (for tests and diagnostics)."""
    return list(_tailers.values())
