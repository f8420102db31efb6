"""One reader per Redis stream per server process, feeding the shared fan-out.

``StreamReader`` is to a Redis stream what ``streams.logs.files.tailer.Tailer``
is to a file: one ``XREAD BLOCK`` loop per (Redis URL, stream, event loop),
started by the first subscriber and stopped with the last, publishing
``LogBatch`` objects into a ``FanOut`` (``streams.logs.fanout``), so every
client of the source gets the same bounded queue, skip markers and
encode-once batches as a file's. Choices:

* **Cursors are entry ids** (``streams.logs.redis.cursor``). The fan-out's
  position is the id of the last entry published; ``XREAD`` continues
  strictly after it, so a Redis restart (reconnected with backoff) loses and
  repeats nothing: the reader picks up at the same id.
* **The first subscriber's start** is known only after one round trip
  (``XREVRANGE + - COUNT 1``): until then subscriptions get a
  ``PendingStart``, settled before anything after it is published, and their
  history waits for it.
* **History is read by each subscription** from Redis: the backfill is
  ``XREVRANGE <start> - COUNT N``, a resume ``XRANGE (<after> <start>`` in
  pages. A cursor older than the oldest retained entry (the stream was
  trimmed past it: ``XINFO STREAM`` says entries were removed) resumes from
  the oldest one with a notice; a cursor ahead of this reader (another
  process read further) skips live lines up to it.
* **Lines are parsed here** (levels, JSON, tracebacks), with one
  ``LineParser`` per host, so one host's traceback is not cut by another's
  lines. ``notice`` entries (a shipper's rotation or truncation) are live
  notices prefixed with the host; ``gap`` entries are warning lines, so they
  also show in a backfill and a download.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams import conf
from streams.logs.fanout import FanOut, LogBatch
from streams.logs.lines import LineParser, LogCursor, LogLine
from streams.logs.redis.cursor import EntryId, PendingStart
from streams.logs.redis.stream import (
    Entry,
    RawEntry,
    connect,
    decode_entry,
    raw_entries,
    stream_key,
    xread_entries,
)
from streams.logs.sources import Resume, SourceSubscription

logger = logging.getLogger(__name__)

#: Entries per ``XREAD`` and per history page; how long one ``XREAD`` blocks (ms).
READ_COUNT: Final = 1000
BLOCK_MS: Final = 2000
#: Backoff between reconnection attempts: first, then at most (seconds).
BACKOFF_FIRST: Final = 0.05
BACKOFF_MAX: Final = 2.0

REDIS_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)

NOTICE_TRIMMED: Final = (
    "Lines after the position you resumed from were trimmed away from the stream; "
    "showing from the oldest line it still has."
)
NOTICE_UNKNOWN: Final = (
    "The position you resumed from is not in this stream; "
    "showing from the oldest line it still has."
)
NOTICE_UNREACHABLE: Final = "Redis is unreachable; lines will follow when it answers again."
NOTICE_REACHABLE: Final = "Redis answers again; following the stream."


class StreamReader:
    """Follows one stream and publishes its entries to a fan-out (see the module docstring)."""

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        queue_limit: int | None = None,
        on_stop: Callable[[StreamReader], None] | None = None,
    ) -> None:
        self.url = url
        self.stream = stream
        self.key = stream_key(stream)
        self.queue_limit = queue_limit
        self.fanout = FanOut(EntryId.origin(), on_empty=self._last_left)
        self.client: Redis | None = None
        self.settled = asyncio.Event()
        self.started = False
        self.stopped = False
        self.exists = False
        self.reconnects = 0  # outages recovered from (tests wait on it)
        self._on_stop = on_stop
        self._pending: list[PendingStart] = []
        self._parsers: dict[str, LineParser] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None

    @property
    def position(self) -> EntryId:
        position = self.fanout.position
        assert isinstance(position, EntryId)
        return position

    @property
    def subscriber_count(self) -> int:
        return self.fanout.subscriber_count

    def subscribe(self) -> RedisSubscription:
        """Register a subscriber at the current position (starting the reader if needed)."""
        if self.stopped:
            raise RuntimeError("this reader has stopped; get a new one from get_reader()")
        if not self.started:
            self._start()
        start: EntryId | PendingStart
        if self.settled.is_set():
            start = self.position
        else:
            start = PendingStart()
            self._pending.append(start)
        limit = self.queue_limit if self.queue_limit is not None else conf.queue_size()
        subscription = RedisSubscription(self, limit, start)
        self.fanout.add(subscription)
        return subscription

    def _start(self) -> None:
        self.started = True
        # A socket timeout longer than the block: a dead connection still fails.
        self.client = connect(self.url, socket_timeout=BLOCK_MS / 1000 + 10)
        self._task = asyncio.create_task(self._run(), name=f"xread {self.key}")

    def _last_left(self) -> None:
        if self.started and not self.stopped:
            self.stop()

    def stop(self) -> None:
        """Stop reading (called when the last subscriber leaves); cleanup finishes in a task."""
        if self.stopped:
            return
        self.stopped = True
        if self._on_stop is not None:
            self._on_stop(self)
        if self._task is not None:
            self._task.cancel()
        self._closing = asyncio.ensure_future(self._shutdown())

    async def _shutdown(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await self._closing

    async def _run(self) -> None:
        assert self.client is not None
        client = self.client
        delay = BACKOFF_FIRST
        unreachable = False
        while True:
            try:
                if not self.settled.is_set():
                    newest = raw_entries(await client.xrevrange(self.key, "+", "-", count=1))
                    self._settle(EntryId.parse(newest[0][0]) if newest else EntryId.origin())
                    self.exists = bool(newest)
                reply = xread_entries(
                    await client.xread(
                        {self.key: str(self.position)}, count=READ_COUNT, block=BLOCK_MS
                    )
                )
            except REDIS_ERRORS as exc:
                if not unreachable:
                    unreachable = True
                    logger.warning("reading %s: Redis is unreachable (%s); retrying", self.key, exc)
                    self._notice(NOTICE_UNREACHABLE)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except Exception:
                logger.exception("reading %s failed; retrying", self.key)
                await asyncio.sleep(BACKOFF_MAX)
                continue
            if unreachable:
                unreachable = False
                delay = BACKOFF_FIRST
                self.reconnects += 1
                self._notice(NOTICE_REACHABLE)
            if reply:
                self._deliver(reply)

    def _settle(self, position: EntryId) -> None:
        self.fanout.advance(position)
        for start in self._pending:
            start.settle(position)
        self._pending.clear()
        self.settled.set()

    def _notice(self, text: str) -> None:
        if self.settled.is_set():
            self.fanout.publish(LogBatch((), self.position, text))

    def _deliver(self, raw: list[RawEntry]) -> None:
        """Cut the entries into batches at their notices and publish them in order."""
        self.exists = True
        batches: list[LogBatch] = []
        lines: list[LogLine] = []
        for entry_id, fields in raw:
            entry = decode_entry(entry_id, fields)
            cursor = EntryId.parse(entry_id)
            if entry.kind == "notice":
                if lines:
                    batches.append(LogBatch(tuple(lines), lines[-1].cursor))
                    lines = []
                batches.append(LogBatch((), cursor, _host_notice(entry)))
            else:
                lines.append(to_line(entry, cursor, self._parsers))
        if lines:
            batches.append(LogBatch(tuple(lines), lines[-1].cursor))
        self.fanout.advance(EntryId.parse(raw[-1][0]))
        for batch in batches:
            self.fanout.publish(batch)


class RedisSubscription(SourceSubscription):
    """A client of a stream reader: the fan-out's queue, and the stream up to its ``start``."""

    def __init__(self, reader: StreamReader, limit: int, start: EntryId | PendingStart) -> None:
        super().__init__(limit, start, on_close=reader.fanout.remove)
        self.reader = reader
        self.fanout = reader.fanout

    async def settled(self, idle: float | None) -> bool:
        if self.reader.settled.is_set():
            return True
        try:
            async with asyncio.timeout(idle):
                await self.reader.settled.wait()
        except TimeoutError:
            return False
        return True

    async def _start_id(self) -> EntryId:
        """The start, once the reader has settled it (its first answer from Redis)."""
        await self.reader.settled.wait()
        start = self.start
        if isinstance(start, PendingStart):
            assert start.value is not None
            return start.value
        assert isinstance(start, EntryId)
        return start

    @property
    def _client(self) -> Redis:
        assert self.reader.client is not None
        return self.reader.client

    async def backfill(self, count: int) -> AsyncIterator[list[LogLine]]:
        """The newest ``count`` entries up to ``start`` (``XREVRANGE``), oldest first."""
        start = await self._start_id()
        if count <= 0 or start == EntryId.origin():
            return
        raw = raw_entries(
            await self._client.xrevrange(self.reader.key, str(start), "-", count=count)
        )
        raw.reverse()
        lines = list(to_lines(raw, {}))
        for index in range(0, len(lines), READ_COUNT):
            yield lines[index : index + READ_COUNT]

    async def since(self, after: LogCursor) -> Resume:
        """Entries after ``after`` up to ``start``; a notice when ``after`` was trimmed away."""
        start = await self._start_id()
        if not isinstance(after, EntryId):
            return Resume(NOTICE_UNKNOWN, self._range("-", start), start)
        if after == start:
            return Resume(None, _no_lines(), start)
        info = await self._info()
        if after < start:
            first = _first_id(info)
            trimmed = info is not None and int(info["entries-added"]) > int(info["length"])
            if first is not None and after < first and trimmed:
                return Resume(NOTICE_TRIMMED, self._range("-", start), start)
            return Resume(None, self._range(after.after, start), start)
        last = info.get("last-generated-id") if info is not None else None
        if last is not None and after <= EntryId.parse(str(last)):
            # Ahead of this process's reader (another process read further): skip to it.
            self.skip_through(after, _seen_up_to(after))
            return Resume(None, _no_lines(), after)
        return Resume(NOTICE_UNKNOWN, self._range("-", start), start)

    async def _info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._client.xinfo_stream(self.reader.key)
        except ResponseError:
            return None  # no such key
        return info

    async def _range(self, low: str, start: EntryId) -> AsyncIterator[list[LogLine]]:
        """``XRANGE low <start>`` in pages, parsed (one parser per host across pages)."""
        parsers: dict[str, LineParser] = {}
        while True:
            raw = raw_entries(
                await self._client.xrange(self.reader.key, low, str(start), count=READ_COUNT)
            )
            if not raw:
                return
            lines = list(to_lines(raw, parsers))
            if lines:
                yield lines
            if len(raw) < READ_COUNT:
                return
            low = EntryId.parse(raw[-1][0]).after


def to_line(entry: Entry, cursor: EntryId, parsers: dict[str, LineParser]) -> LogLine:
    """A ``line`` or ``gap`` entry as a ``LogLine`` carrying its host."""
    if entry.kind == "gap":
        parsers.pop(entry.host, None)  # whatever followed is not the same record
        return LogLine(entry.text, "warning", cursor, host=entry.host)
    parser = parsers.get(entry.host)
    if parser is None:
        parser = parsers[entry.host] = LineParser()
    line = parser.parse(entry.text, cursor)
    return replace(line, host=entry.host) if entry.host else line


def to_lines(raw: Iterable[RawEntry], parsers: dict[str, LineParser]) -> Iterable[LogLine]:
    """History entries as lines; notices are live-only (a file's history has none either)."""
    for entry_id, fields in raw:
        entry = decode_entry(entry_id, fields)
        if entry.kind != "notice":
            yield to_line(entry, EntryId.parse(entry_id), parsers)


def _host_notice(entry: Entry) -> str:
    return f"{entry.host}: {entry.text}" if entry.host else entry.text


def _first_id(info: dict[str, Any] | None) -> EntryId | None:
    if info is None:
        return None
    first = info.get("first-entry")
    return EntryId.parse(str(first[0])) if first else None


def _seen_up_to(after: EntryId) -> Callable[[LogCursor], bool]:
    def seen(cursor: LogCursor) -> bool:
        return isinstance(cursor, EntryId) and cursor <= after

    return seen


async def _no_lines() -> AsyncIterator[list[LogLine]]:
    return
    yield


_readers: dict[tuple[str, str, asyncio.AbstractEventLoop], StreamReader] = {}


def get_reader(url: str, stream: str) -> StreamReader:
    """The running event loop's reader of ``stream`` at ``url`` (created, not started)."""
    key = (url, stream, asyncio.get_running_loop())
    reader = _readers.get(key)
    if reader is None or reader.stopped:
        reader = _readers[key] = StreamReader(url, stream, on_stop=_forget(key))
    return reader


def running_reader(url: str, stream: str) -> StreamReader | None:
    """The reader following ``stream`` on the running event loop, if any (none off the loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    reader = _readers.get((url, stream, loop))
    return reader if reader is not None and reader.started and not reader.stopped else None


def _forget(key: tuple[str, str, asyncio.AbstractEventLoop]) -> Callable[[StreamReader], None]:
    def forget(reader: StreamReader) -> None:
        if _readers.get(key) is reader:
            del _readers[key]

    return forget


def active_readers() -> list[StreamReader]:
    """The stream readers running in this process (for tests and diagnostics)."""
    return list(_readers.values())
