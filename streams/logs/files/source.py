"""The file source: a ``LogSource`` (``streams.logs.sources``) that follows a file.

Thin on purpose: the tailer (``streams.logs.files.tailer``) does the work and
is shared by every client of the same path on the same event loop; this
class is what the views, forms and producers see: the name, the cursor
(``"<inode>:<offset>"``), a subscription, a summary for the pages and the
raw download (with ``Range``, so ``curl -C -`` resumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from streams.http.ranges import ranged_file_response
from streams.logs.files.cursor import CURSOR_SYNTAX, Cursor
from streams.logs.files.tailer import FileSubscription, get_tailer, running_tailer
from streams.logs.sources import SourceSummary


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
        try:
            stat = self.path.stat()
        except OSError:
            tailer = running_tailer(self.path)
            return SourceSummary(exists=tailer is not None and tailer.position.inode != 0)
        return SourceSummary(exists=True, size=stat.st_size)

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
