"""The file source: a ``LogSource`` (``streams.logs.sources``) that follows a file.

Thin on purpose: the tailer (``streams.logs.files.tailer``) does the work and
is shared by every client of the same path on the same event loop; this
class is what the views, forms and producers see: the name, the cursor
(``"<inode>:<offset>"``), a subscription, the start of a permalink's
context, a summary for the pages and the raw download (with ``Range``, so ``curl -C -`` resumes).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from streams.http.ranges import ranged_file_response
from streams.logs.chart import count_file_minutes
from streams.logs.files.cursor import CURSOR_SYNTAX, Cursor
from streams.logs.files.reader import ends_a_line, find_backfill_start
from streams.logs.files.tailer import FileSubscription, get_tailer, running_tailer
from streams.logs.lines import LogCursor
from streams.logs.sources import SourceSummary
from streams.logs.timestamps import TimeContext


@dataclass(frozen=True)
class FileSource:
    """The log file at ``path``, under the configured ``name``."""

    name: str
    path: Path
    cursor_syntax: str = CURSOR_SYNTAX

    def parse_cursor(self, text: str) -> Cursor:
        return Cursor.parse(text)

    def subscribe(self) -> FileSubscription:
        return get_tailer(self.path).subscribe()

    def summary(self) -> SourceSummary:
        """Whether the file exists and its size; a file this process still follows exists."""
        tailer = running_tailer(self.path)
        clients, pushed = (
            (tailer.fanout.subscriber_count, tailer.fanout.direct_count) if tailer else (0, 0)
        )
        try:
            stat = self.path.stat()
        except OSError:
            exists = tailer is not None and tailer.position.inode != 0
            return SourceSummary(exists=exists, clients=clients, pushed=pushed)
        return SourceSummary(exists=True, size=stat.st_size, clients=clients, pushed=pushed)

    async def context_start(self, cursor: LogCursor, before: int) -> LogCursor:
        """The cursor ``before`` lines ahead of the line ``cursor`` ends (a permalink's context).

        ``cursor`` itself when it is not in the current file (rotated away,
        truncated, or not just after a line break): resuming from it then
        says so, as for any cursor that is gone.
        """
        if not isinstance(cursor, Cursor):
            return cursor
        return await asyncio.to_thread(self._context_start, cursor, before)

    def _context_start(self, cursor: Cursor, before: int) -> Cursor:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return cursor
        try:
            stat = os.fstat(fd)
            if (
                stat.st_ino != cursor.inode
                or cursor.offset > stat.st_size
                or not ends_a_line(fd, cursor.offset)
            ):
                return cursor
            return Cursor(cursor.inode, find_backfill_start(fd, cursor.offset, before + 1))
        finally:
            os.close(fd)

    async def level_minutes(self, since: float, end: LogCursor) -> dict[int, Counter[str]]:
        """The chart's past: ``count_file_minutes`` of the current file up to ``end``."""
        if not isinstance(end, Cursor) or end.inode == 0:
            return {}
        # Line times without a zone are the site's (TIME_ZONE), as in search.
        context = TimeContext(timezone.get_default_timezone())
        return await asyncio.to_thread(
            count_file_minutes, self.path, end.inode, end.offset, since, context
        )

    async def download(self, request: HttpRequest) -> HttpResponseBase:
        return await ranged_file_response(
            request,
            self.path,
            filename=f"{self.name}.log",
            content_type="text/plain; charset=utf-8",
        )


def from_location(name: str, location: str) -> FileSource:
    """The ``SourceFactory`` of files: ``location`` is an absolute path."""
    return FileSource(name, Path(location))
