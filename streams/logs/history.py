"""Older lines of a log source: its rotated siblings, read newest first, searched.

Synchronous and free of asyncio on purpose: ``streams.logs.search`` runs it
in a worker thread a slice at a time, and tests drive it directly. Choices:

* **Siblings** are found by regular expressions on the names in the source's
  directory (``DEFAULT_ROTATED``: logrotate's ``app.log.1``, ``app.log.2.gz``,
  its ``dateext`` ``app.log-20261201[.gz]``, and Python's
  ``TimedRotatingFileHandler`` ``app.log.2026-12-01``); a source may give its
  own as glob patterns (``STREAMBOARD_LOG_ROTATION``, ``rotation_patterns``).
  Newest first: numbered ones by number, dated ones by date, numbered
  before dated; names a glob found, by modification time.
* **Newest first in bounded memory.** A plain file is read backwards in
  blocks (``BLOCK_BYTES``) with ``os.pread``; the bytes before a block's
  first line break belong to a line that started earlier and are carried
  into the next block. A block also starts at a line that has a timestamp
  when one is near its start, so a traceback is never cut from its header
  (a line without a timestamp belongs to the line before).
* **Gzip cannot be read backwards.** A first pass inflates the file forward
  and keeps a copy of the inflater about every ``GZIP_SEGMENT_BYTES`` of
  output (``zlib.Decompress.copy``: its state and 32 KiB window, ~31 KB
  measured); the second pass walks those checkpoints from the last one back,
  inflating one segment at a time and handing it on in blocks. The
  trade-off: a gzipped file is inflated twice, and holds one segment plus
  ~31 KB per segment of checkpoints (about 8 MB for 1 GB of output at 4 MiB
  segments), instead of either holding the whole file or giving its lines
  oldest first. A search's first pass also notes which segments hold a
  candidate line; the second inflates only those and the segment before
  each (where their first lines' header and the start of their first line
  are), so a rare needle inflates the file about once. And while every
  candidate line has its own timestamp (so its level, time and result do
  not depend on the block it is read in) and they fit in a segment's bytes,
  the first pass keeps them and the second is not needed: a search for
  ordinary lines inflates the file once whatever their number. A time bound
  cannot seek in it: it is read whole (unless last modified well before
  ``since``).
* **Memory** of a search: about four blocks (the read, the realigned copy,
  the candidates) for a plain file; for a gzipped one, a segment (or the
  lines its first pass kept, at most a segment's bytes), its checkpoints and
  the same blocks.
* **Time seeks** (``seek_time``) are a binary search over a plain file's
  bytes: each probe reads one window after the probe point and takes the
  first line with a timestamp there. Timestamps are assumed *nearly*
  ordered: searches widen their bounds by ``ORDER_SLACK_SECONDS`` and then
  filter every record by its exact time.
* **Search** (``search_history``) is a generator: results newest first,
  with a ``SearchProgress`` after each block. Reading happens only while the
  consumer asks for more; closing the generator closes the files at once.
  Text filters run over whole blocks (``LineMatcher.candidate_lines``);
  levels and times are worked out only for the lines they hit.
"""

from __future__ import annotations

import fnmatch
import os
import re
import zlib
from array import array
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from streams import conf
from streams.logs.lines import Level, at_least, detect_level, level_of_word, parse_json_object
from streams.logs.patterns import LineMatcher
from streams.logs.timestamps import ISO_GLUED_START, TimeContext, TimeRange, iso_epoch, line_time

#: Bytes per backward read of a plain file.
BLOCK_BYTES: Final = 256 * 1024
#: Output bytes between two checkpoints of a gzipped file (and per segment inflated).
GZIP_SEGMENT_BYTES: Final = 4 * 1024 * 1024
#: Compressed bytes read, and inflated bytes produced at most, per step of inflation.
GZIP_READ_BYTES: Final = 16 * 1024
GZIP_STEP_BYTES: Final = 256 * 1024
#: What a line kept by a gzip search's first pass costs beyond its bytes
#: (``KeptLines``: its offset and its end, 8 bytes each).
KEPT_LINE_OVERHEAD: Final = 16
#: A "line" this long without a line break is cut (a block never grows past it).
MAX_LINE_BYTES: Final = 1024 * 1024
#: How far a block's start looks for a line with a timestamp to start at.
HEADER_SCAN_LINES: Final = 64
#: How many lines back a continuation line looks for its header.
HEADER_LOOKBACK_LINES: Final = 200
#: Bytes read per probe of ``seek_time``.
PROBE_BYTES: Final = 64 * 1024
#: How far out of order timestamps may be at a time bound (seconds).
ORDER_SLACK_SECONDS: Final = 5.0

#: A gzipped file last modified this long before ``since`` is not read (seconds).
MTIME_MARGIN: Final = 3600.0

#: Rotated names, as patterns on the file name (``{name}``: the source's file name).
DEFAULT_ROTATED: Final[tuple[str, ...]] = (
    r"{name}\.(?P<n>\d{1,6})(?:\.gz)?",
    r"{name}[-.](?P<date>\d{4}-?\d\d-?\d\d)(?:\.gz)?",
)


def rotation_patterns(source: str) -> tuple[str, ...]:
    """The name patterns of ``source``'s rotated files: its configured globs, else the defaults.

    A glob becomes a pattern without ``n`` or ``date`` groups, so what it finds
    is ordered by modification time (a rotated file is last written when it
    is rotated away).
    """
    globs = conf.log_rotation().get(source)
    if globs is None:
        return DEFAULT_ROTATED
    return tuple(fnmatch.translate(glob) for glob in globs)


@dataclass(frozen=True)
class HistoryFile:
    """One file of a source's history: the current file or a rotated sibling."""

    path: Path
    compressed: bool
    size: int
    inode: int
    mtime: float
    current: bool = False

    @classmethod
    def of(cls, path: Path, *, current: bool = False) -> HistoryFile:
        stat = path.stat()
        return cls(
            path,
            path.name.endswith(".gz"),
            stat.st_size,
            stat.st_ino,
            stat.st_mtime,
            current,
        )


def rotated_siblings(path: Path, patterns: Sequence[str] = DEFAULT_ROTATED) -> list[Path]:
    """The rotated copies of ``path`` in its directory, newest first."""
    compiled = [re.compile(p.replace("{name}", re.escape(path.name))) for p in patterns]
    ranked: list[tuple[tuple[int, int], str, Path]] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        if entry.name == path.name or not entry.is_file():
            continue
        for regex in compiled:
            match = regex.fullmatch(entry.name)
            if match is None:
                continue
            groups = match.groupdict()
            if groups.get("n") is not None:
                key = (0, int(groups["n"]))
            elif groups.get("date") is not None:
                key = (1, -int(groups["date"].replace("-", "")))
            else:
                key = (2, -int(entry.stat().st_mtime))
            ranked.append((key, entry.name, Path(entry.path)))
            break
    ranked.sort()
    return [item[2] for item in ranked]


def history_files(path: Path, patterns: Sequence[str] = DEFAULT_ROTATED) -> list[HistoryFile]:
    """The current file (if it exists) then its rotated siblings, newest first."""
    files = []
    if path.is_file():
        files.append(HistoryFile.of(path, current=True))
    for sibling in rotated_siblings(path, patterns):
        try:
            files.append(HistoryFile.of(sibling))
        except OSError:
            continue  # rotated away while we looked
    return files


# -- reading newest first ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of a file: ``data`` starts at byte ``offset`` of the (inflated) file."""

    offset: int
    data: bytes


def _plain_reverse(
    fd: int, start: int, end: int, size: int, is_header: Callable[[bytes], bool] | None
) -> Iterator[tuple[int, bytes, int]]:
    """``_align`` for a plain file, without copies: ``(offset, data, begin)`` per block.

    The block is ``data[begin:]`` (``data`` read at ``offset``): what the
    newer block did not take (its carry) is read again with each chunk, so a
    chunk is never joined to it nor sliced (two copies of each block saved).
    """
    position = end
    carry = 0
    while position > start:
        length = min(size, position - start)
        position -= length
        data = os.pread(fd, length + carry, position)
        if position <= start:
            if data:
                yield position, data, 0
            return
        cut = _cut(data, is_header)
        carry = len(data) if cut is None else cut
        if cut is not None and cut < len(data):
            yield position, data, cut


def _cut(data: bytes, is_header: Callable[[bytes], bool] | None) -> int | None:
    """Where the whole lines of ``data`` (read backwards, not at the start) begin.

    ``None`` when there is no line break (all of it goes on with the older
    block); what is before the cut goes on with it too.
    """
    cut = data.find(b"\n") + 1
    if cut == 0:
        if len(data) <= MAX_LINE_BYTES:
            return None
        cut = len(data) - MAX_LINE_BYTES  # a huge line: cut it rather than grow
    if is_header is not None:
        cut = _header_start(data, cut, is_header)
    return cut


def _align(
    chunks: Iterator[tuple[int, bytes, bool]],
    start: int,
    is_header: Callable[[bytes], bool] | None,
) -> Generator[Block]:
    """Blocks of whole lines from chunks read backwards (see the module docstring).

    Chunks are contiguous, except one flagged as a fresh start: what was
    carried from the newer chunks is dropped (lines a search skipped).
    """
    carry = b""
    for offset, chunk, fresh in chunks:
        if fresh:
            carry = b""
        data = chunk + carry if carry else chunk
        if offset <= start:
            if data:
                yield Block(offset, data)
            return
        cut = _cut(data, is_header)
        if cut is None:
            carry = data
            continue
        carry = data[:cut]
        if cut < len(data):
            yield Block(offset + cut, data[cut:])
    if carry:
        yield Block(start, carry)


def _header_start(data: bytes, cut: int, is_header: Callable[[bytes], bool]) -> int:
    """The first line at or after ``cut`` with a timestamp, if one is near; else ``cut``.

    When every line left is without one (the start of a traceback), all of
    them go on with the older block (``len(data)``), up to ``MAX_LINE_BYTES``.
    """
    position = cut
    for _ in range(HEADER_SCAN_LINES):
        if position >= len(data):
            return len(data) if len(data) - cut <= MAX_LINE_BYTES else cut
        end = data.find(b"\n", position)
        if end < 0:
            end = len(data)  # the file's last line, without its line break
        if is_header(data[position:end]):
            return position
        position = end + 1
    return cut


def read_blocks_reverse(
    fd: int,
    start: int = 0,
    end: int | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
    context: TimeContext | None = None,
) -> Iterator[Block]:
    """Blocks of whole lines of ``[start, end)`` of a plain file, newest first.

    ``start`` must be a line start. With a ``context``, blocks start at a
    line with a timestamp where one is near, so records stay whole.
    """
    if end is None:
        end = os.fstat(fd).st_size
    for offset, data, begin in _plain_reverse(fd, start, end, block_bytes, _header_test(context)):
        yield Block(offset + begin, data[begin:] if begin else data)


def _header_test(context: TimeContext | None) -> Callable[[bytes], bool] | None:
    if context is None:
        return None
    return lambda line: line_time(line, context) is not None


@dataclass
class _Checkpoint:
    inflater: zlib._Decompress
    compressed_offset: int
    offset: int


class _Inflation:
    """Inflates a gzip stream (any number of members) from a file's position, on demand."""

    def __init__(
        self, file: BinaryIO, inflater: zlib._Decompress, read_bytes: int = GZIP_READ_BYTES
    ) -> None:
        self.file = file
        self.inflater = inflater
        self.read_bytes = read_bytes
        self.position = file.tell()  # the compressed offset of ``pending[0]``
        self.pending = b""
        self.ended = False

    @property
    def between_inputs(self) -> bool:
        """Whether all input read so far is consumed (the inflater can be copied cheaply)."""
        return not self.pending

    def read(self, size: int) -> bytes:
        """Up to ``size`` inflated bytes (fewer only at the end, ``b""`` after it)."""
        while not self.ended:
            if not self.pending:
                self.pending = self.file.read(self.read_bytes)
                if not self.pending:
                    self.ended = True
                    break
            piece = self.inflater.decompress(self.pending, size)
            if self.inflater.eof:
                rest = self.inflater.unused_data
                self.position += len(self.pending) - len(rest)
                self.pending = rest or self.file.read(self.read_bytes)
                self.inflater = zlib.decompressobj(wbits=31)
                if not self.pending.startswith(b"\x1f\x8b"):
                    self.ended = True  # the end, or padding after the last member
            else:
                tail = self.inflater.unconsumed_tail
                self.position += len(self.pending) - len(tail)
                self.pending = tail
            if piece:
                return piece
        return b""


_Candidates = Callable[[bytes], Iterator[tuple[int, int]]]


class KeptLines:
    """Lines with their offsets, packed: one buffer and two arrays (16 bytes a line)."""

    __slots__ = ("_data", "_ends", "_offsets")

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = array("q")
        self._ends = array("q")

    def append(self, offset: int, line: bytes) -> None:
        self._offsets.append(offset)
        self._data += line
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, line)`` in the order they were kept."""
        begin = 0
        for offset, end in zip(self._offsets, self._ends, strict=True):
            yield offset, bytes(self._data[begin:end])
            begin = end

    def newest_first(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, line)`` from the last kept to the first."""
        ends = self._ends
        for index in range(len(ends) - 1, -1, -1):
            begin = ends[index - 1] if index else 0
            yield self._offsets[index], bytes(self._data[begin : ends[index]])


class GzipReader:
    """A gzipped file read in segments, newest first (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        segment_bytes: int = GZIP_SEGMENT_BYTES,
        read_bytes: int = GZIP_READ_BYTES,
    ) -> None:
        self.path = path
        self.segment_bytes = segment_bytes
        self.read_bytes = read_bytes
        self.size = 0  # inflated size, known after ``index``
        self._checkpoints: list[_Checkpoint] = []
        self._inflate: list[bool] = []
        self._heads: list[bytes | None] = []
        #: After ``index`` with ``alone``: each segment's candidate lines, or ``None``.
        self.kept: list[KeptLines] | None = None

    def index(
        self,
        file: BinaryIO,
        candidates: _Candidates | None = None,
        alone: Callable[[bytes], bool] | None = None,
    ) -> None:
        """The first pass: inflate forward, keeping an inflater copy about every segment.

        A copy is taken only between two reads of input, so it holds no
        unconsumed input (which would cost up to ``GZIP_READ_BYTES`` each).

        With ``candidates`` (a search's ``LineMatcher.candidate_lines``), the
        pass also notes which segments hold a candidate line, so the second
        pass inflates only those (and the segment before each, where its
        first lines' header and the start of its first line are), reading
        just the first line of the others from what this pass kept.

        With ``alone`` too (a test that a line's level and time are its own,
        whatever block it is read in: it has a timestamp), the pass keeps the
        candidate lines themselves, ``(offset, line)`` per segment in
        ``kept``, while every one stands alone and they fit in
        ``segment_bytes`` (what the second pass would hold at once). Then no
        segment need be inflated again. Otherwise ``kept`` is ``None`` and
        the segments are marked as above.
        """
        inflation = _Inflation(file, zlib.decompressobj(wbits=31), self.read_bytes)
        self._checkpoints = [_Checkpoint(inflation.inflater.copy(), inflation.position, 0)]
        produced = 0
        mark = self.segment_bytes
        hot = [candidates is None]
        heads: list[bytes | None] = [b""]
        head: bytes | None = b""  # the current segment's bytes up to its first line break
        head_done = True  # (the first segment's head is never needed)
        pending = b""  # the unfinished line, for the candidate test
        kept: list[KeptLines] | None = [KeptLines()] if candidates and alone else None
        kept_bytes = 0
        while piece := inflation.read(GZIP_STEP_BYTES):
            produced += len(piece)
            if not head_done:
                newline = piece.find(b"\n")
                head = (head or b"") + (piece if newline < 0 else piece[: newline + 1])
                head_done = newline >= 0 or len(head) > MAX_LINE_BYTES
                if newline < 0 and len(head) > MAX_LINE_BYTES:
                    head = None
                heads[-1] = head
            if candidates is not None and (kept is not None or not hot[-1]):
                data = pending + piece if pending else piece
                last = data.rfind(b"\n")
                if last >= 0:
                    lines = data[: last + 1]
                    if kept is not None:
                        base = produced - len(data)
                        for start, end in candidates(lines):
                            hot[-1] = True
                            line = lines[start:end]
                            kept_bytes += len(line) + KEPT_LINE_OVERHEAD
                            if kept_bytes > self.segment_bytes or not (alone and alone(line)):
                                kept = None
                                break
                            kept[-1].append(base + start, line)
                    elif next(iter(candidates(lines)), None) is not None:
                        hot[-1] = True
                pending = data[last + 1 :]
                if len(pending) > MAX_LINE_BYTES:
                    hot[-1], pending, kept = True, b"", None
            elif pending:
                pending = b""
            if produced >= mark and inflation.between_inputs:
                copy = inflation.inflater.copy()
                self._checkpoints.append(_Checkpoint(copy, inflation.position, produced))
                mark = produced + self.segment_bytes
                hot.append(candidates is None)
                if kept is not None:
                    kept.append(KeptLines())
                heads.append(None)
                head, head_done = b"", False
        if candidates is not None and pending:
            for start, end in candidates(pending):
                hot[-1] = True
                line = pending[start:end]
                kept_bytes += len(line) + KEPT_LINE_OVERHEAD
                if kept is None or kept_bytes > self.segment_bytes or not (alone and alone(line)):
                    kept = None
                    break
                kept[-1].append(produced - len(pending) + start, line)
        self.size = produced
        if len(self._checkpoints) > 1 and self._checkpoints[-1].offset == produced:
            self._checkpoints.pop()
            hot.pop()
            heads.pop()
            if kept is not None:
                for offset, line in kept.pop():
                    kept[-1].append(offset, line)
        # A hot segment needs the one before it inflated too; a segment whose
        # first line could not be kept is inflated whatever it holds.
        self._inflate = [
            hot[k] or (k + 1 < len(hot) and hot[k + 1]) or (k > 0 and heads[k] is None)
            for k in range(len(hot))
        ]
        self._heads = heads
        self.kept = kept

    def kept_reverse(self, file: BinaryIO) -> Iterator[tuple[KeptLines, int]]:
        """``(kept lines, compressed bytes spanned)`` per segment, last first (after ``index``)."""
        kept = self.kept or []
        compressed_ends = [*(c.compressed_offset for c in self._checkpoints[1:]), file_size(file)]
        for index in range(len(kept) - 1, -1, -1):
            yield kept[index], compressed_ends[index] - self._checkpoints[index].compressed_offset

    def segments_reverse(self, file: BinaryIO) -> Iterator[tuple[int, list[bytes], int, bool]]:
        """``(offset, pieces, compressed bytes spanned, skipped)`` per segment, last first.

        A skipped segment's pieces are just its first line (up to its first
        line break): the end of the line that started in the segment before.
        """
        ends = [*(c.offset for c in self._checkpoints[1:]), self.size]
        compressed_ends = [*(c.compressed_offset for c in self._checkpoints[1:]), file_size(file)]
        while self._checkpoints:
            index = len(self._checkpoints) - 1
            # Each inflater copy is released as soon as its segment is read.
            checkpoint = self._checkpoints.pop()
            spanned = compressed_ends[index] - checkpoint.compressed_offset
            head = self._heads[index]
            if not self._inflate[index] and head is not None:
                yield checkpoint.offset, [head], spanned, True
                continue
            file.seek(checkpoint.compressed_offset)
            inflation = _Inflation(file, checkpoint.inflater, self.read_bytes)
            want = ends[index] - checkpoint.offset
            pieces = []
            while want > 0 and (piece := inflation.read(min(want, GZIP_STEP_BYTES))):
                pieces.append(piece)
                want -= len(piece)
            del inflation
            yield checkpoint.offset, pieces, spanned, False
            del pieces


def file_size(file: BinaryIO) -> int:
    here = file.tell()
    size = file.seek(0, os.SEEK_END)
    file.seek(here)
    return size


def gzip_blocks_reverse(
    path: Path,
    *,
    segment_bytes: int = GZIP_SEGMENT_BYTES,
    block_bytes: int = BLOCK_BYTES,
    context: TimeContext | None = None,
    on_segment: Callable[[int], None] | None = None,
    candidates: _Candidates | None = None,
    read_bytes: int = GZIP_READ_BYTES,
) -> Generator[Block]:
    """Blocks of whole lines of a gzipped file, newest first (inflated twice, bounded memory).

    ``on_segment(compressed_bytes)`` is called as each segment is read
    (progress). With ``candidates``, segments without a candidate line (nor
    a hot neighbour) are not inflated again: their lines are left out.
    """
    with open(path, "rb") as file:
        reader = GzipReader(path, segment_bytes=segment_bytes, read_bytes=read_bytes)
        reader.index(file, candidates)
        yield from _align(
            _gzip_chunks(reader, file, block_bytes, on_segment), 0, _header_test(context)
        )


def _gzip_chunks(
    reader: GzipReader,
    file: BinaryIO,
    block_bytes: int,
    on_segment: Callable[[int], None] | None,
) -> Iterator[tuple[int, bytes, bool]]:
    """An indexed gzip file's segments, last first, as chunks for ``_align``."""
    for offset, pieces, spanned, skipped in reader.segments_reverse(file):
        if on_segment is not None:
            on_segment(spanned)
        if skipped:
            # Only the end of the older segment's last line: a fresh start.
            yield offset, pieces[0], True
            continue
        # The segment's pieces, last first, joined into blocks of about
        # ``block_bytes`` (never the whole segment at once).
        end = offset + sum(len(piece) for piece in pieces)
        while pieces:
            group = [pieces.pop()]
            size = len(group[0])
            while pieces and size < block_bytes:
                group.append(pieces.pop())
                size += len(group[-1])
            end -= size
            yield end, b"".join(reversed(group)), False
            del group


def read_lines_reverse(
    file: HistoryFile, *, context: TimeContext | None = None
) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of every line of ``file``, newest first (tests, small tools)."""
    if file.compressed:
        blocks: Iterator[Block] = gzip_blocks_reverse(file.path, context=context)
        yield from _lines_of_blocks(blocks)
        return
    fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        yield from _lines_of_blocks(read_blocks_reverse(fd, context=context))
    finally:
        os.close(fd)


def _lines_of_blocks(blocks: Iterator[Block]) -> Iterator[tuple[int, bytes]]:
    for block in blocks:
        data = block.data
        end = len(data)
        if data.endswith(b"\n"):
            end -= 1
        while end >= 0:
            begin = data.rfind(b"\n", 0, end) + 1
            yield block.offset + begin, data[begin:end]
            end = begin - 1


# -- seeking by time ---------------------------------------------------------------------


def _first_timed_line(
    fd: int, position: int, limit: int, context: TimeContext
) -> tuple[int, float] | None:
    """The start and time of the first line starting after ``position`` that has a time."""
    if position > 0:
        window = os.pread(fd, PROBE_BYTES, position - 1)
        skip = window.find(b"\n")
        if skip < 0:
            return None
        base = position - 1 + skip + 1
        window = window[skip + 1 :]
    else:
        base = 0
        window = os.pread(fd, PROBE_BYTES, 0)
    index = 0
    while base + index < limit:
        end = window.find(b"\n", index)
        if end < 0:
            return None
        when = line_time(window[index:end], context)
        if when is not None:
            return base + index, when
        index = end + 1
    return None


def seek_time(
    fd: int,
    when: float,
    *,
    context: TimeContext | None = None,
    start: int = 0,
    end: int | None = None,
) -> int:
    """The offset of the first record of ``[start, end)`` whose time is at least ``when``.

    ``end`` if there is none. A binary search over bytes (about
    ``log2(size / PROBE_BYTES)`` reads of ``PROBE_BYTES``), then a short
    forward scan; exact when timestamps are ordered, nearly so otherwise.
    ``start`` must be a line start.
    """
    context = context or TimeContext()
    if end is None:
        end = os.fstat(fd).st_size
    low, high = start, end
    while high - low > PROBE_BYTES:
        middle = (low + high) // 2
        found = _first_timed_line(fd, middle, high, context)
        if found is None or found[1] >= when:
            high = middle
        else:
            low = found[0]
    # Forward from ``low`` (a line start) to the first line at or after ``when``.
    position = low
    rest = b""
    while position < end:
        chunk = os.pread(fd, min(PROBE_BYTES, end - position), position)
        if not chunk:
            break
        data = rest + chunk
        base = position - len(rest)
        index = 0
        while (stop := data.find(b"\n", index)) >= 0:
            line_when = line_time(data[index:stop], context)
            if line_when is not None and line_when >= when:
                return base + index
            index = stop + 1
        rest = data[index:]
        position += len(chunk)
        if len(rest) > MAX_LINE_BYTES:
            rest = b""
    if rest:
        line_when = line_time(rest, context)
        if line_when is not None and line_when >= when:
            return end - len(rest)
    return end


# -- search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A matching line with its record's level and time (a continuation's are its header's)."""

    path: str
    text: str
    level: Level
    time: float | None
    start: int  # byte offset of the line (in the inflated file for a gzipped one)
    end: int  # byte offset just after its line break
    inode: int
    compressed: bool
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def cursor(self) -> str | None:
        """A live-tail cursor (``<inode>:<offset>``) of the line; ``None`` in a gzipped file."""
        return None if self.compressed else f"{self.inode}:{self.end}"


@dataclass(frozen=True, slots=True)
class SearchProgress:
    """Bytes scanned so far of the bytes this search will scan at most (on disk)."""

    scanned: int
    total: int
    path: str


@dataclass(frozen=True)
class _Plan:
    file: HistoryFile
    start: int
    end: int

    @property
    def cost(self) -> int:
        return self.file.size if self.file.compressed else self.end - self.start


@dataclass
class SearchOptions:
    """How a search reads; the defaults suit a server."""

    block_bytes: int = BLOCK_BYTES
    segment_bytes: int = GZIP_SEGMENT_BYTES
    gzip_read_bytes: int = GZIP_READ_BYTES
    slack: float = ORDER_SLACK_SECONDS
    highlight: bool = True
    context: TimeContext = field(default_factory=TimeContext)


def plan_search(
    files: Sequence[HistoryFile], time_range: TimeRange, options: SearchOptions
) -> list[_Plan]:
    """Which byte range of which file a search reads (time bounds applied by seeking)."""
    plans = []
    for file in files:
        if file.compressed:
            if time_range.since is not None and file.mtime < time_range.since - MTIME_MARGIN:
                # Last written well before ``since`` (so is every older file):
                # not worth inflating. Plain files seek instead, which is exact.
                break
            plans.append(_Plan(file, 0, file.size))
            continue
        try:
            fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            if os.fstat(fd).st_ino != file.inode:
                continue  # rotated since it was listed: its new name is in the list
            end = _complete_end(fd, file.size) if file.current else file.size
            start = 0
            if time_range.until is not None:
                end = seek_time(
                    fd, time_range.until + options.slack, context=options.context, end=end
                )
            if time_range.since is not None:
                start = seek_time(
                    fd, time_range.since - options.slack, context=options.context, end=end
                )
        finally:
            os.close(fd)
        if end > start:
            plans.append(_Plan(file, start, end))
    return plans


def _complete_end(fd: int, size: int) -> int:
    """Just after the last line break (a line still being written is not searched)."""
    position = size
    while position > 0:
        length = min(PROBE_BYTES, position)
        block = os.pread(fd, length, position - length)
        index = block.rfind(b"\n")
        if index >= 0:
            return position - length + index + 1
        position -= length
        if size - position > MAX_LINE_BYTES:
            return size
    return 0


def search_history(
    files: Sequence[HistoryFile],
    matcher: LineMatcher,
    time_range: TimeRange | None = None,
    options: SearchOptions | None = None,
) -> Generator[SearchResult | SearchProgress]:
    """Matching lines of ``files`` (newest first), a ``SearchProgress`` after each block."""
    time_range = time_range or TimeRange()
    options = options or SearchOptions()
    plans = plan_search(files, time_range, options)
    total = sum(plan.cost for plan in plans)
    scanned = 0
    yield SearchProgress(0, total, plans[0].file.path.name if plans else "")
    for plan in plans:
        name = str(plan.file.path)
        if plan.file.compressed:
            for item in _search_gzip(plan.file, matcher, time_range, options):
                if isinstance(item, int):
                    yield SearchProgress(scanned + item, total, name)
                else:
                    yield item
            scanned += plan.cost
            continue
        fd = os.open(plan.file.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            header = _header_test(options.context)
            for offset, data, begin in _plain_reverse(
                fd, plan.start, plan.end, options.block_bytes, header
            ):
                yield from _search_block(
                    data, begin, offset, plan.file, matcher, time_range, options
                )
                yield SearchProgress(scanned + plan.end - offset - begin, total, name)
        finally:
            os.close(fd)
        scanned += plan.cost
    yield SearchProgress(total, total, "")


def _search_gzip(
    file: HistoryFile,
    matcher: LineMatcher,
    time_range: TimeRange,
    options: SearchOptions,
) -> Iterator[SearchResult | int]:
    """Results of a gzipped file newest first, and after each block the bytes read so far.

    When the first pass could keep every candidate line (``GzipReader.index``
    with ``alone``), the results come from those: the file is inflated once.
    """
    candidates = matcher.candidate_lines if matcher.scans_blocks else None
    header = _header_test(options.context)
    with open(file.path, "rb") as stream:
        reader = GzipReader(
            file.path, segment_bytes=options.segment_bytes, read_bytes=options.gzip_read_bytes
        )
        reader.index(stream, candidates, header)
        spent = 0
        if reader.kept is not None:
            for lines, spanned in reader.kept_reverse(stream):
                for offset, line in lines.newest_first():
                    result = _result(line, 0, len(line), offset, file, matcher, time_range, options)
                    if result is not None:
                        yield result
                spent += spanned
                yield spent
            return

        def count(size: int) -> None:
            nonlocal spent
            spent += size

        blocks = _align(_gzip_chunks(reader, stream, options.block_bytes, count), 0, header)
        try:
            for block in blocks:
                yield from _search_block(
                    block.data, 0, block.offset, file, matcher, time_range, options
                )
                yield spent
        finally:
            blocks.close()


def _search_block(
    data: bytes,
    begin: int,
    offset: int,
    file: HistoryFile,
    matcher: LineMatcher,
    time_range: TimeRange,
    options: SearchOptions,
) -> Iterator[SearchResult]:
    """The results of the block ``data[begin:]`` (``data`` at byte ``offset``), newest first."""
    hits = list(matcher.candidate_lines(data, begin))
    if not hits:
        return
    header_cache: dict[int, tuple[Level, float | None]] = {}
    for start, end in reversed(hits):
        result = _result(
            data, start, end, offset, file, matcher, time_range, options, begin, header_cache
        )
        if result is not None:
            yield result


def _result(
    data: bytes,
    start: int,
    end: int,
    offset: int,
    file: HistoryFile,
    matcher: LineMatcher,
    time_range: TimeRange,
    options: SearchOptions,
    begin: int = 0,
    header_cache: dict[int, tuple[Level, float | None]] | None = None,
) -> SearchResult | None:
    """The line ``data[start:end]`` (``data`` at byte ``offset``) as a result, if it passes.

    Its level and time are its record's: for a line without a timestamp, its
    header's, looked for in ``data[begin:start]``.
    """
    raw = data[start:end]
    context = options.context
    # The common ``<time> LEVEL`` line: its time and level from one match.
    fast = _TIME_THEN_LEVEL.match(raw)
    if (
        fast is None
        or (when := iso_epoch(fast, context)) is None
        or (level := _LEVEL_OF_WORD.get(fast.group(9))) is None
    ):
        when = line_time(raw, context)
        if when is not None:
            level = _level_of(raw)
        else:
            cache = {} if header_cache is None else header_cache
            level, when = _header_of(data, begin, start, context, cache)
    if not at_least(level, matcher.level) or not time_range.contains(when):
        return None
    text = raw.removesuffix(b"\r").decode("utf-8", "replace")
    return SearchResult(
        str(file.path),
        text,
        level,
        when,
        offset + start,
        offset + end + 1,
        file.inode,
        file.compressed,
        tuple(matcher.spans(raw)) if options.highlight else (),
    )


# ``<timestamp> LEVEL`` (or ``[LEVEL]``): the common layout, where the first level
# word of the line (the one ``detect_level`` takes) is the one right after the time.
_LEVEL_WORDS: Final = (
    rb"DEBUG|TRACE|INFO|NOTICE|WARN(?:ING)?|ERR(?:OR)?|CRIT(?:ICAL)?|FATAL|ALERT|EMERG"
)
_LEVEL_AFTER_TIME: Final = re.compile(
    rb"[\[(<]?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[.,\d]*(?:Z|[+-]\d\d:?\d\d)?[\])>]?"
    rb"[ \t]+[\[(<]?(" + _LEVEL_WORDS + rb")\b"
)


# ``_LEVEL_AFTER_TIME`` with the time's fields captured (as ``line_time`` reads
# them): where it matches, ``line_time`` and ``_level_of`` agree with its groups.
# Only a zone written right after the time is allowed: after a space, a zone
# is where ``_LEVEL_AFTER_TIME`` wants the level word (no match, the slow path).
_TIME_THEN_LEVEL: Final = re.compile(
    ISO_GLUED_START + rb"[\])>]?[ \t]+[\[(<]?(" + _LEVEL_WORDS + rb")\b"
)
_LEVEL_OF_WORD: Final[dict[bytes, Level]] = {
    word: level
    for word in (
        b"DEBUG TRACE INFO NOTICE WARN WARNING ERR ERROR CRIT CRITICAL FATAL ALERT EMERG".split()
    )
    if (level := level_of_word(word.decode())) is not None
}


def _level_of(raw: bytes) -> Level:
    """``lines.detect_level`` of a raw line, with a fast path for ``<time> LEVEL``."""
    fast = _LEVEL_AFTER_TIME.match(raw)
    if fast is not None:
        level = level_of_word(fast.group(1).decode())
        if level is not None:
            return level
    text = raw.decode("utf-8", "replace")
    return detect_level(text, parse_json_object(text) if raw[:1] == b"{" else None)


def _header_of(
    data: bytes,
    floor: int,
    start: int,
    context: TimeContext,
    cache: dict[int, tuple[Level, float | None]],
) -> tuple[Level, float | None]:
    """The level and time of the record a time-less line at ``start`` belongs to.

    The header is looked for in the lines of ``data[floor:start]``.
    """
    end = start - 1
    for _ in range(HEADER_LOOKBACK_LINES):
        if end < floor:
            break
        begin = max(data.rfind(b"\n", floor, end) + 1, floor)
        cached = cache.get(begin)
        if cached is not None:
            return cached
        raw = data[begin:end]
        when = line_time(raw, context)
        if when is not None:
            found = cache[begin] = (_level_of(raw), when)
            return found
        end = begin - 1
    # No header in reach: the line stands alone.
    line_end = data.find(b"\n", start)
    return _level_of(data[start : line_end if line_end >= 0 else len(data)]), None
