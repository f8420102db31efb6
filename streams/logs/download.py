"""Downloads of a file source as text: just the matching lines, or the whole file redacted.

``GET /logs/<name>/download`` without a filter is the raw file (``Range``,
``ETag``: ``streams.http.ranges``) for a user who may see it unredacted.
This module produces the two other bodies, as async generators of bytes
that read one block at a time in a worker thread (constant memory, reading
only as fast as the client takes it, stopping when it goes):

* **Filtered** (``filtered_download``): the lines of the current file and its
  rotated siblings (``streams.logs.history.history_files``), oldest first,
  that pass ``level``/``q``/``re``/``exclude`` (the live stream's
  ``LineFilter``: a traceback goes with its header) and ``since``/``until``
  (a line without a timestamp has its record's). A plain file's time bounds
  are found by binary search (``seek_time``, widened by the history
  module's slack, then every record checked); a gzipped sibling is inflated
  forward, unless it was last written well before ``since``. Lines are
  redacted before they are matched, as on the live stream.
* **Redacted raw** (``redacted_file``): the current file as written, each
  line a rule covers redacted (``Redactor.redact_bytes``, so bytes that are
  not UTF-8 stay as they are). Its length and offsets differ from the file's,
  so it is served whole: ``Range`` is refused (200, ``Accept-Ranges: none``)
  and no ``ETag`` is sent (the redacted bytes also depend on the rules).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

from streams.logs.files.cursor import Cursor
from streams.logs.follow import LineFilter
from streams.logs.history import (
    DEFAULT_ROTATED,
    MAX_LINE_BYTES,
    MTIME_MARGIN,
    ORDER_SLACK_SECONDS,
    HistoryFile,
    history_files,
    seek_time,
)
from streams.logs.lines import LineParser, LogCursor, LogLine
from streams.logs.patterns import LineFilterForm
from streams.logs.redaction import Redactor
from streams.logs.timestamps import TimeContext, TimeRange, TimeRangeForm, line_time

#: The parameters that make a download filtered (any of them, non-empty).
FILTER_PARAMETERS: Final = ("level", "q", "re", "exclude", "since", "until")

#: Bytes read per step (and about the most a step holds, with its output).
READ_BYTES: Final = 256 * 1024


def _complete_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (each ending with a line break) from raw chunks.

    A last line without a break (still being written) is left out; a "line"
    longer than ``MAX_LINE_BYTES`` goes out cut, so a block stays bounded.
    """
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > MAX_LINE_BYTES:
            yield data + b"\n"
            rest = b""
            continue
        if cut:
            yield data[:cut]
        rest = data[cut:]


def _plain_chunks(fd: int, start: int, end: int) -> Iterator[bytes]:
    position = start
    while position < end:
        chunk = os.pread(fd, min(READ_BYTES, end - position), position)
        if not chunk:
            return
        position += len(chunk)
        yield chunk


def _gzip_chunks(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(READ_BYTES):
            yield chunk


class _GroupingParser(LineParser):
    """Tells headers from continuations without working out levels (for a filter with none).

    A download sends only text: without a level filter the level of a line
    is never looked at, and finding it is most of the cost of a line.
    """

    def parse(self, text: str, cursor: LogCursor) -> LogLine:
        continuation = self._is_continuation(text)
        if not continuation:
            self.header_level = "info"
        return LogLine(text, "info", cursor, continuation=continuation)


class _Records:
    """Lines of one file as ``LogLine``, each with its record's time (or its header's)."""

    def __init__(
        self, inode: int, offset: int, context: TimeContext, *, levels: bool, times: bool
    ) -> None:
        self.parser = LineParser() if levels else _GroupingParser()
        self.inode = inode
        self.offset = offset
        self.context = context
        self.times = times
        self.time: float | None = None

    def parse(self, block: bytes) -> Iterator[tuple[LogLine, float | None]]:
        for raw in block.split(b"\n")[:-1]:
            self.offset += len(raw) + 1
            if self.times and (when := line_time(raw, self.context)) is not None:
                self.time = when
            text = raw.decode("utf-8", "replace")
            yield self.parser.parse(text, Cursor(self.inode, self.offset)), self.time


def _file_blocks(
    file: HistoryFile, time_range: TimeRange, context: TimeContext
) -> Iterator[tuple[int, bytes]]:
    """``(offset, block)`` of whole lines of ``file`` that may hold ``time_range``."""
    if file.compressed:
        offset = 0
        for block in _complete_lines(_gzip_chunks(file.path)):
            yield offset, block
            offset += len(block)
        return
    fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if os.fstat(fd).st_ino != file.inode:
            return  # rotated since it was listed: its new name is in the list
        end = file.size
        start = 0
        if time_range.until is not None:
            end = seek_time(fd, time_range.until + ORDER_SLACK_SECONDS, context=context, end=end)
        if time_range.since is not None:
            start = seek_time(fd, time_range.since - ORDER_SLACK_SECONDS, context=context, end=end)
        offset = start
        for block in _complete_lines(_plain_chunks(fd, start, end)):
            yield offset, block
            offset += len(block)
    finally:
        os.close(fd)


def filtered_lines(
    files: list[HistoryFile],
    line_filter: LineFilter,
    time_range: TimeRange,
    context: TimeContext,
) -> Generator[bytes]:
    """The matching lines of ``files`` (listed newest first, read oldest first), block by block."""
    for file in reversed(files):
        if (
            file.compressed
            and time_range.since is not None
            and file.mtime < time_range.since - MTIME_MARGIN
        ):
            continue
        records: _Records | None = None
        for offset, block in _file_blocks(file, time_range, context):
            if records is None:
                records = _Records(
                    file.inode,
                    offset,
                    context,
                    levels=line_filter.matcher.level is not None,
                    times=time_range.bounded,
                )
            lines = [
                line
                for line, when in records.parse(block)
                if not time_range.bounded or time_range.contains(when)
            ]
            kept = line_filter.apply(lines)
            # A step with nothing to send still yields, so a stop is noticed between blocks.
            yield "".join(line.text + "\n" for line in kept).encode()


def redacted_chunks(path: Path, redactor: Redactor) -> Generator[bytes]:
    """The current file as written, each covered value redacted, a block at a time."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        rest = b""
        for chunk in _plain_chunks(fd, 0, size):
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) <= MAX_LINE_BYTES:
                rest = data
                continue
            cut = cut or len(data)
            yield redactor.redact_bytes(data[:cut])
            rest = data[cut:]
        if rest:
            yield redactor.redact_bytes(rest)
    finally:
        os.close(fd)


async def in_thread(blocks: Generator[bytes]) -> AsyncIterator[bytes]:
    """Each step of a blocking generator in a worker thread; closed when the client goes.

    A step and the close hold one lock, so a client that goes mid-step has
    the generator (and its file) closed as soon as that step returns,
    without the event loop waiting for it.
    """
    lock = threading.Lock()

    def step() -> bytes | None:
        with lock:
            return next(blocks, None)

    def close() -> None:
        with lock:
            blocks.close()

    loop = asyncio.get_running_loop()
    try:
        while (block := await loop.run_in_executor(None, step)) is not None:
            if block:
                yield block
    finally:
        try:
            loop.run_in_executor(None, close)
        except RuntimeError:
            # The loop or its executor is shutting down: a thread of its own.
            threading.Thread(target=close, daemon=True).start()


def filtered_download(
    path: Path,
    line_filter: LineFilter,
    time_range: TimeRange,
    context: TimeContext,
    rotated: Sequence[str] = DEFAULT_ROTATED,
) -> AsyncIterator[bytes]:
    """The body of a filtered download of the file source at ``path`` (see the module docstring).

    ``rotated``: the name patterns of its rotated siblings (``history.rotation_patterns``).
    """

    def blocks() -> Generator[bytes]:
        yield from filtered_lines(history_files(path, rotated), line_filter, time_range, context)

    return in_thread(blocks())


def redacted_file(path: Path, redactor: Redactor) -> AsyncIterator[bytes]:
    """The body of a raw download with redaction on (whole, never ranged)."""
    return in_thread(redacted_chunks(path, redactor))


class DownloadForm(LineFilterForm, TimeRangeForm):
    """A filtered download's query: ``level``, ``q``, ``re``, ``exclude``, ``since``, ``until``."""

    def error_text(self) -> str:
        return LineFilterForm.error_text(self)


def is_filtered(params: Mapping[str, str]) -> bool:
    """Whether a download's query asks for a filter (else it is the raw file)."""
    return any(params.get(key) for key in FILTER_PARAMETERS)


async def redacted_text(chunks: AsyncIterator[bytes], redactor: Redactor) -> AsyncIterator[bytes]:
    """A source's own text download (whole lines per chunk), each line redacted.

    For kinds other than files (a ``redis:`` source's retained lines): their
    download already streams text, so it is redacted on its way out rather
    than re-read here.
    """
    async for chunk in chunks:
        lines = chunk.decode("utf-8", "replace").split("\n")
        yield "\n".join(redactor.redact(line) for line in lines).encode()
