"""Reading a log file, synchronously: the part of ``tail -F`` that touches bytes.

No asyncio here, so every case is testable with plain files: the tailer
(``streams.logs.files.tailer``) runs these steps on the event loop or in a
worker thread. Choices:

* **``os.pread``** everywhere: no shared file position, so the tailer's
  reader, each client's backfill and each resume read the same descriptor
  (or duplicates of it) without interfering.
* **A partial last line is held** until its line break arrives; a "line"
  longer than ``MAX_LINE_BYTES`` without one is emitted as it is.
* **Truncation** (same inode, content replaced) restarts from its start
  with a notice. It is seen even when the file regrew past the old offset
  before the step (``copytruncate`` with a busy writer, a reopen with
  ``O_TRUNC`` and a banner): the reader remembers the last
  ``FINGERPRINT_BYTES`` it consumed (a held partial line's included) and
  rereads them in the same ``pread`` as the new bytes after them (no extra
  call, no gap between check and read); fewer or other bytes there mean
  "truncated". Not seen: a rewrite whose last ``FINGERPRINT_BYTES`` before
  the offset are the same bytes (the same content again, or identical lines
  at the same offsets): what precedes the offset is taken as read, what
  follows is read as new.
  ``holds`` and ``ends_a_line`` are the same check for a cursor handed out
  earlier (the tailer's subscriptions, a client's resume).
* **Rotation** (the path names another inode) first drains the old inode,
  emits its unfinished line, then switches to the new file from its start
  with a notice: no line lost or read twice. A rotation is never mistaken
  for a truncation: the fingerprint is checked on the old inode's own
  descriptor, which a rename leaves as it was.
* **Bounded work**: a step reads at most ``STEP_BYTES`` before its lines are
  pushed (``more`` says "read on at once"); a range read gives at most
  ``RANGE_BATCH_LINES`` lines per call; a backfill looks back at most
  ``MAX_BACKFILL_BYTES``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from streams.logs.files.cursor import Cursor
from streams.logs.lines import LineParser, LogLine

#: Bytes read per ``pread``.
READ_CHUNK: Final = 256 * 1024
#: Bytes read per tailer step before the lines are pushed (then it reads on at once).
STEP_BYTES: Final = 1024 * 1024
#: Bytes before the read offset remembered to tell a truncated-and-regrown file
#: (a ``pread`` of 256 bytes costs what one of 64 does, and 256 usually span a
#: whole line with its timestamp, so fixed-width repetitive lines still differ).
FINGERPRINT_BYTES: Final = 256
#: A "line" this long without a line break is pushed as it is.
MAX_LINE_BYTES: Final = 1024 * 1024
#: Steps with at most this much new data read on the event loop, not in a thread.
INLINE_READ_BYTES: Final = 64 * 1024
#: How far back from its start a backfill looks for its lines.
MAX_BACKFILL_BYTES: Final = 8 * 1024 * 1024
#: Lines per batch read from the file for a backfill or a resume.
RANGE_BATCH_LINES: Final = 1000

NOTICE_TRUNCATED: Final = "The file was truncated; following it from its start."
NOTICE_ROTATED: Final = "The file was rotated; following the new file from its start."


@dataclass
class StepResult:
    """What one step read: lines, notices placed between them, and whether to read on."""

    lines: list[LogLine] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)  # (index in lines, text)
    more: bool = False


class FileReader:
    """The followed file as read so far (touched by one step at a time, loop or thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.inode = 0
        self.read_offset = 0  # bytes consumed, including ``partial``
        self.partial = b""
        # The last bytes consumed, ending at ``read_offset`` (``partial`` included).
        self.fingerprint = b""
        self.parser = LineParser()

    @property
    def line_offset(self) -> int:
        return self.read_offset - len(self.partial)

    def cursor(self) -> Cursor:
        return Cursor(self.inode, self.line_offset) if self.fd is not None else Cursor.origin()

    def cursor_fingerprint(self) -> bytes:
        """The known bytes just before ``cursor()`` (no read: the fingerprint minus ``partial``).

        Shorter than ``FINGERPRINT_BYTES`` while a partial line is held, but
        then it ends with that line's break at least.
        """
        if not self.partial:
            return self.fingerprint
        return self.fingerprint[: max(0, len(self.fingerprint) - len(self.partial))]

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
        self.fingerprint = read_fingerprint(fd, offset)

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

    def step(self, budget: int = STEP_BYTES) -> StepResult:
        """Read what was added (at most about ``budget`` bytes), following truncation and rotation.

        The tailer passes ``INLINE_READ_BYTES`` for a step on the event loop,
        so a truncation found there (a rereading from the start) stays small.
        """
        result = StepResult()
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

    def _read(self, result: StepResult, budget: int | None) -> int:
        """Read on from ``read_offset``; each ``pread`` also rereads the fingerprint before it.

        So the check that the file still holds what was read costs no extra
        call and no gap: the bytes before the offset and the new ones come
        from one ``pread``. Other bytes there, or fewer (the file is shorter
        than the offset), mean it was truncated: restart from its start with
        the notice, dropping a held partial line. The size alone would miss a
        file that regrew past the offset before this step.
        """
        assert self.fd is not None
        total = 0
        while budget is None or total < budget:
            size = READ_CHUNK if budget is None else min(READ_CHUNK, budget - total)
            known = len(self.fingerprint)
            raw = os.pread(self.fd, known + size, self.read_offset - known)
            if not raw.startswith(self.fingerprint):
                self.read_offset = 0
                self.partial = b""
                self.fingerprint = b""
                result.notices.append((len(result.lines), NOTICE_TRUNCATED))
                continue
            if len(raw) == known:
                break
            total += len(raw) - known
            self.fingerprint = raw[-FINGERPRINT_BYTES:]
            base = self.line_offset
            data = self.partial + memoryview(raw)[known:]
            self.read_offset += len(raw) - known
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

    def _emit(self, result: StepResult, raw: bytes) -> None:
        self._emit_at(result, raw, self.read_offset)

    def _emit_at(self, result: StepResult, raw: bytes, offset: int) -> None:
        result.lines.append(self.parser.parse(decode(raw), Cursor(self.inode, offset)))


def read_fingerprint(fd: int, offset: int) -> bytes:
    """The last ``FINGERPRINT_BYTES`` (or fewer, near the start) before ``offset``."""
    size = min(FINGERPRINT_BYTES, offset)
    return os.pread(fd, size, offset - size) if size else b""


def holds(fd: int, offset: int, fingerprint: bytes) -> bool:
    """Whether the bytes just before ``offset`` are still ``fingerprint`` (one ``pread``)."""
    if not fingerprint:
        return True
    return os.pread(fd, len(fingerprint), offset - len(fingerprint)) == fingerprint


def ends_a_line(fd: int, offset: int) -> bool:
    """Whether ``offset`` is the start of the file or just after a line break (one ``pread``).

    The only check a client's cursor allows (``<inode>:<offset>`` carries no
    fingerprint): a cursor into a file truncated and regrown past it mostly
    lands inside a line of the new content.
    """
    return offset == 0 or os.pread(fd, 1, offset - 1) == b"\n"


def find_backfill_start(fd: int, end: int, count: int, limit: int = MAX_BACKFILL_BYTES) -> int:
    """The offset of the first of the last ``count`` lines ending at or before ``end``.

    Looks back at most ``limit`` bytes: a file of huge lines gives fewer
    lines rather than a read of unbounded size.
    """
    floor = max(0, end - limit)
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


class RangeReader:
    """Complete lines in ``[begin, end)`` of ``fd``, parsed, a bounded batch per ``read()``."""

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
                self.pending.append(self.parser.parse(decode(piece), Cursor(self.inode, offset)))
        if not self.pending:
            return None
        lines = self.pending[:RANGE_BATCH_LINES]
        del self.pending[:RANGE_BATCH_LINES]
        return lines


def decode(raw: bytes) -> str:
    """A raw line as text: a CRLF's CR dropped, undecodable bytes replaced (never an error)."""
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")
