"""File downloads that resume: ``Range`` requests answered with 206, streamed asynchronously.

Django's ``FileResponse`` answers every request with the whole file and, under
ASGI, iterates the file synchronously (Django reads a sync iterator to the end
in a thread before sending the first byte). Log files and export results are
large and users resume them with ``curl -C -``, so this module:

* parses a single byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) and
  answers 206 with ``Content-Range``; an unsatisfiable range gets 416 with
  ``Content-Range: bytes */size``; several ranges get the whole file (200),
  which RFC 9110 allows;
* sends an ``ETag`` (given, or made from the file's inode, size and mtime) and
  honours ``If-Range`` (range only if the validator still matches, else the
  whole file, so a resumed download never splices two versions) and
  ``If-None-Match`` (304);
* reads the file in chunks in a thread, one chunk per ``send``, so the
  server's flow control keeps memory flat for slow clients.

The file is opened before the response exists (so a vanished file is a 404,
not a broken stream) and its size is fixed at that moment: a log that grows
while it is downloaded is served up to the size it had when asked for.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header, quote_etag

CHUNK_SIZE = 256 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte positions ``header`` asks for.

    ``None`` means "serve the whole file" (no header, a header we do not
    understand, or several ranges). Raises ``ValueError`` when the range is
    well formed but unsatisfiable for a file of ``size`` bytes.
    """
    match = _RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # bytes=-n: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # syntactically invalid: RFC 9110 says ignore the header
    if first >= size:
        raise ValueError("range starts after the end of the file")
    return first, min(last, size - 1)


def file_etag(stat: os.stat_result) -> str:
    """A strong validator that changes when the file is replaced or written to."""
    return quote_etag(f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}")


async def _read_span(handle: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    """Yield ``length`` bytes from ``first``, a chunk at a time, reading in a thread."""
    await asyncio.to_thread(handle.seek, first)
    remaining = length
    while remaining > 0:
        chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, remaining))
        if not chunk:
            # The file shrank under us: end the response broken, not short.
            raise OSError("file truncated while it was being served")
        remaining -= len(chunk)
        yield chunk


class _FileSpanResponse(StreamingHttpResponse):
    """Closes its file when Django closes the response, even if it was never iterated."""

    def __init__(self, handle: BinaryIO, content: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._handle = handle

    def close(self) -> None:
        self._handle.close()
        super().close()


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [tag.strip() for tag in header.split(",")]
    return "*" in candidates or etag in candidates


async def ranged_file_response(
    request: HttpRequest,
    path: Path,
    *,
    filename: str,
    content_type: str,
    etag: str | None = None,
) -> HttpResponseBase:
    """Serve ``path`` as an attachment, answering ``Range`` with 206 and resuming safely."""
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except (FileNotFoundError, IsADirectoryError):
        raise Http404("No such file.") from None
    try:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        tag = quote_etag(etag) if etag else file_etag(stat)
        headers = {
            "ETag": tag,
            "Accept-Ranges": "bytes",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "Content-Disposition": content_disposition_header(True, filename) or "attachment",
        }
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and _etag_matches(if_none_match, tag):
            handle.close()
            return HttpResponse(status=304, headers={"ETag": tag})

        span: tuple[int, int] | None = None
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if range_header and (if_range is None or if_range.strip() == tag):
            try:
                span = parse_range(range_header, size)
            except ValueError:
                handle.close()
                return HttpResponse(
                    status=416,
                    headers={**headers, "Content-Range": f"bytes */{size}"},
                    content_type="text/plain",
                )
        first, last = span if span is not None else (0, size - 1)
        length = last - first + 1 if size else 0
        response = _FileSpanResponse(
            handle,
            _read_span(handle, first, length),
            status=206 if span is not None else 200,
            content_type=content_type,
            headers=headers,
        )
        response["Content-Length"] = str(length)
        if span is not None:
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
        return response
    except BaseException:
        handle.close()
        raise
