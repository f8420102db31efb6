"""The shipper: one file followed on its own host, appended to a Redis stream in batches.

``manage.py ship_log NAME PATH`` runs a ``Shipper``. It follows ``PATH`` with
the reader the file source tails with (``streams.logs.files.reader``:
rotation, truncation, late creation, partial lines held back) and appends
what it reads to ``streamboard:log:NAME`` (``streams.logs.redis.stream``).
Choices:

* **One atomic step per batch.** A Lua script ``XADD``-s the batch's entries,
  records the host's position (batch number and file cursor after the last
  entry) in the ``:shipped`` hash and trims the stream, all at once: a
  shipper killed at any moment has shipped whole batches only, and the hash
  says exactly which.
* **Exactly once across failures.** The position is read back from Redis at
  start-up, never from a local file that could be lost or stale. A batch
  whose reply was lost (the connection broke after the script ran) is sent
  again unchanged with the same batch number; the script sees that number
  recorded and adds nothing.
* **The file is the buffer.** While Redis is unreachable the shipper stops
  reading and retries with a capped exponential backoff; it keeps its
  descriptor, so a rotation meanwhile is drained from the old inode first.
  A shipper that was stopped finds the file it was in by inode, under
  ``PATH`` or a rotated name beside it (``PATH.1``...), and finishes it, then
  each newer rotated file in turn (``ShippingReader``); if it
  is gone, a ``gap`` entry says from which byte the rest was lost. Inodes are
  reused at once by file systems (a deleted log's number is often the new
  log's), so the recorded position also holds a fingerprint of the file's
  first KiB (``<length>:<crc32>``), and a file is "the same" only if both match. A
  truncation that overtakes an outage becomes a ``gap`` saying how many
  bytes (at least) were never read.
* **No parsing here.** Levels, JSON and tracebacks are decided by the source
  on the dashboard's side; the shipper moves text (``RawLines``), so one core
  ships well over 50,000 lines/s (``bench/redis_source.py``).
* **Trimming by the script**: ``MAXLEN ~`` (``STREAMBOARD_REDIS_LOG_MAXLEN``)
  and ``MINID ~`` from the Redis server's clock
  (``STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS``), approximate so that Redis
  drops whole nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import StepResult
from streams.logs.files.watch import (
    FALLBACK_POLL_SECONDS,
    SAFETY_POLL_SECONDS,
    Watcher,
    start_watch,
)
from streams.logs.lines import LogLine
from streams.logs.redis.shipped_file import (
    FINGERPRINT_BYTES,
    Fingerprint,
    Shipped,
    ShippingReader,
    candidates,
    open_if,
)
from streams.logs.redis.stream import EntryKind, shipped_key, stream_key

logger = logging.getLogger(__name__)

#: Entries per atomic batch, and the text bytes a batch carries at most.
BATCH_LINES: Final = 1000
BATCH_BYTES: Final = 1024 * 1024
#: Backoff between attempts while Redis is unreachable: first, then at most (seconds).
BACKOFF_FIRST: Final = 0.05
BACKOFF_MAX: Final = 2.0

# KEYS: stream, shipped hash. ARGV: host, batch number, maxlen (0: none), max age
# in ms (0: none), the position after the batch, then (kind, text, pos) per entry.
SHIP_SCRIPT: Final = """
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local shipped = tonumber(string.match(stored, '^(%d+) '))
  if shipped and shipped >= tonumber(ARGV[2]) then
    return -1
  end
end
local host = ARGV[1]
for i = 6, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'host', host, ARGV[i], ARGV[i + 1], 'pos', ARGV[i + 2])
end
redis.call('HSET', KEYS[2], host, ARGV[2] .. ' ' .. ARGV[5])
local maxlen = tonumber(ARGV[3])
if maxlen > 0 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
end
local age = tonumber(ARGV[4])
if age > 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(ms - age))
end
return (#ARGV - 5) / 3
"""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Item:
    """One entry to ship: its kind, its text, and the file cursor reading continues from."""

    kind: EntryKind
    text: str
    pos: Cursor


class Stopped(Exception):
    """The shipper was asked to stop while it waited for Redis."""


class Shipper:
    """Ships ``path`` to the stream of source ``name`` as ``host`` (see the module docstring)."""

    def __init__(
        self,
        client: Redis,
        name: str,
        path: Path,
        host: str,
        *,
        maxlen: int = 0,
        max_age: float = 0.0,
        batch_lines: int = BATCH_LINES,
        watcher: Watcher = "auto",
    ) -> None:
        self.client = client
        self.name = name
        self.path = path
        self.host = host
        self.maxlen = maxlen
        self.max_age_ms = int(max_age * 1000)
        self.batch_lines = max(1, batch_lines)
        self.watcher: Watcher = watcher
        self.reader = ShippingReader(path)
        self.batch = 0
        self.shipped_lines = 0
        self.failures = 0  # attempts Redis did not answer (tests wait on it)
        self.resumed_from: Shipped | None = None
        self._script = client.register_script(SHIP_SCRIPT)
        self._keys = [stream_key(name), shipped_key(name)]
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._unreachable = False
        self._largest = (0, 0)  # (inode, size): the largest size seen of the file being read
        self._prints: dict[int, Fingerprint] = {}  # by inode, for the positions recorded

    def stop(self) -> None:
        """Finish the batch in flight (if Redis answers) and return from ``run``."""
        self._stop.set()

    async def run(self, on_ready: Callable[[Shipper], None] | None = None) -> None:
        """Resume after the last batch Redis has, then ship until ``stop()``."""
        loop = asyncio.get_running_loop()
        watch = None
        try:
            stored = await self._retrying(self._read_shipped)
            self.resumed_from = stored
            pending = self._open(stored)
            if on_ready is not None:
                on_ready(self)
            watch = start_watch(self.watcher, self.path, self._wake.set, loop)
            while not self._stop.is_set():
                if not pending:
                    self._wake.clear()
                    watch.ensure()
                    pending, more = self._read()
                    if not pending:
                        if not more:
                            await self._idle(SAFETY_POLL_SECONDS if watch.watching else None)
                        continue
                for batch in self._batches(pending):
                    await self._retrying(functools.partial(self._ship, batch))
                pending = []
        except Stopped:
            pass
        finally:
            if watch is not None:
                watch.close()
            self.reader.close()

    # -- resuming ------------------------------------------------------------

    async def _read_shipped(self) -> Shipped | None:
        value = await self.client.hget(self._keys[1], self.host)
        if not value:
            return None
        return Shipped.parse(value.decode() if isinstance(value, bytes) else value)

    def _open(self, stored: Shipped | None) -> list[Item]:
        """Open the file the last shipped line was in, at its cursor; gaps for what is gone."""
        if stored is None:
            return []  # the first run: the whole file, once it exists
        self.batch = stored.batch
        cursor = stored.cursor
        if cursor.inode == 0:
            return []  # nothing was in a file yet: the file from its start
        for candidate in candidates(self.path):
            fd = open_if(candidate, cursor.inode, stored.fingerprint)
            if fd is None:
                continue
            if os.fstat(fd).st_size >= cursor.offset:
                self.reader.resume(fd, cursor.offset)
                return []
            self.reader.resume(fd, 0)
            return [
                Item(
                    "gap",
                    f"{candidate} was truncated below byte {cursor.offset}, the last position "
                    "shipped, while the shipper was stopped: what it held beyond was lost.",
                    Cursor(cursor.inode, 0),
                )
            ]
        restart = _inode(self.path)
        return [
            Item(
                "gap",
                f"The file shipped up to byte {cursor.offset} (inode {cursor.inode}) is gone from "
                f"{self.path.parent} (rotated away and deleted, or rewritten): the rest of it "
                "was lost.",
                Cursor(restart, 0) if restart else Cursor.origin(),
            )
        ]

    # -- reading -------------------------------------------------------------

    def _read(self) -> tuple[list[Item], bool]:
        """One reader step as items (lines, notices, a gap before a truncation)."""
        reader = self.reader
        items: list[Item] = []
        if reader.fd is not None:
            self._observe_size()
            inode, largest = self._largest
            truncated = os.fstat(reader.fd).st_size < reader.read_offset
            if truncated:
                self._prints.pop(reader.inode, None)  # its start is rewritten
            if truncated and largest > reader.line_offset:
                lost = largest - reader.line_offset
                items.append(
                    Item(
                        "gap",
                        f"The file was truncated before at least {lost} bytes of it were "
                        "read: they were lost.",
                        Cursor(inode, 0),
                    )
                )
        self._fingerprint()
        result = reader.step()
        self._fingerprint()  # a step may have switched to a new file
        self._largest = (reader.inode, reader.read_offset)
        items.extend(self._items(result))
        return items, result.more

    def _items(self, result: StepResult) -> list[Item]:
        lines = result.lines
        notices = dict(result.notices)
        items: list[Item] = []
        for index, line in enumerate(lines):
            if index in notices:
                items.append(Item("notice", notices.pop(index), Cursor(_inode_of(line), 0)))
            cursor = line.cursor
            assert isinstance(cursor, Cursor)
            items.append(Item("line", line.text, cursor))
        for text in notices.values():
            items.append(Item("notice", text, Cursor(self.reader.inode, 0)))
        return items

    def _fingerprint(self) -> None:
        """Fingerprint the file being read, until its first KiB is there to fingerprint."""
        reader = self.reader
        if reader.fd is None:
            return
        known = self._prints.get(reader.inode)
        if known is None or known.length < FINGERPRINT_BYTES:
            self._prints[reader.inode] = Fingerprint.of(reader.fd)

    def _observe_size(self) -> None:
        """Remember how far the file grew (what a later truncation would take away)."""
        fd = self.reader.fd
        if fd is None:
            return
        with contextlib.suppress(OSError):
            size = os.fstat(fd).st_size
            inode, largest = self._largest
            if inode != self.reader.inode or size > largest:
                self._largest = (self.reader.inode, size)

    async def _idle(self, poll: float | None) -> None:
        """Wait for a change to the file, ``stop()``, or ``poll`` seconds (the fallback's)."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(
                waits,
                timeout=FALLBACK_POLL_SECONDS if poll is None else poll,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for wait in waits:
                wait.cancel()

    # -- shipping ------------------------------------------------------------

    def _batches(self, items: list[Item]) -> list[list[Item]]:
        batches: list[list[Item]] = []
        batch: list[Item] = []
        size = 0
        for item in items:
            if batch and (len(batch) >= self.batch_lines or size + len(item.text) > BATCH_BYTES):
                batches.append(batch)
                batch, size = [], 0
            batch.append(item)
            size += len(item.text)
        if batch:
            batches.append(batch)
        return batches

    async def _ship(self, batch: list[Item]) -> None:
        number = self.batch + 1
        end = batch[-1].pos
        position = Shipped(number, end, self._prints.get(end.inode))
        args: list[str | int] = [
            self.host,
            number,
            self.maxlen,
            self.max_age_ms,
            str(position).partition(" ")[2],
        ]
        for item in batch:
            args += (item.kind, item.text, str(item.pos))
        added = await self._script(keys=self._keys, args=args)
        self.batch = number
        if added != -1:  # -1: Redis had it already (its reply was lost before)
            self.shipped_lines += sum(1 for item in batch if item.kind == "line")

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until Redis answers, with backoff; ``Stopped`` if asked to stop meanwhile."""
        delay = BACKOFF_FIRST
        while True:
            try:
                result = await call()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if not self._unreachable:
                    logger.warning("Redis is unreachable (%s); retrying", exc)
                    self._unreachable = True
                self._observe_size()
                self.failures += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
                if self._stop.is_set():
                    raise Stopped from None
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if self._unreachable:
                logger.warning("Redis answers again; shipping")
                self._unreachable = False
            return result


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return 0


def _inode_of(line: LogLine) -> int:
    cursor = line.cursor
    assert isinstance(cursor, Cursor)
    return cursor.inode
