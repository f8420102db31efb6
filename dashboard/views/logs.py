"""Log pages: the overview, the list of sources, the live tail and the raw download.

The pages are thin shells: every line they show arrives over exactly one SSE
connection per tab (``/streams/overview/`` or ``/streams/logs/<name>/``) and is
swapped in by htmx's SSE extension; ``static/streamboard/logpage.js`` adds the
controls (filters that reconnect, pause with a buffer, follow, clear, the
connection indicator). A source is picked by its configured name, never by a
path from the request, so an unknown name is a 404 before anything is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from streams.conf import log_sources
from streams.http.ranges import ranged_file_response
from streams.jobs.overview import overview_sections
from streams.logs.forms import MAX_QUERY
from streams.logs.lines import LEVELS

#: Lines the page keeps in the DOM; older ones are dropped so memory stays bounded.
MAX_LINES: Final = 2000
#: Lines asked for on (re)connection with new filters.
BACKFILL: Final = 200


def _source_path(name: str) -> Path:
    """The file behind the source ``name``; 404 when no source has that name."""
    try:
        return log_sources()[name]
    except KeyError:
        raise Http404("No such log source.") from None


def _file_summary(path: Path) -> dict[str, object]:
    """What the page says about the file before the stream starts (it may not exist yet)."""
    try:
        stat = path.stat()
    except OSError:
        return {"exists": False, "size": 0}
    return {"exists": True, "size": stat.st_size}


@require_safe
@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    """One card per source, kept current by the ``source-<name>`` events of one stream."""
    sources = [
        {
            "name": name,
            "page_url": reverse("log-page", args=[name]),
            "sse_event": f"source-{name}",
        }
        for name in log_sources()
    ]
    return render(
        request,
        "dashboard/overview.html",
        {
            "sources": sources,
            "stream_url": reverse("overview-stream"),
            "job_sections": overview_sections(request.user),
        },
    )


@require_safe
@staff_member_required
def log_index(request: HttpRequest) -> HttpResponse:
    """The configured sources, by name (paths stay server-side)."""
    sources = [
        {
            "name": name,
            "page_url": reverse("log-page", args=[name]),
            "download_url": reverse("log-download", args=[name]),
            **_file_summary(path),
        }
        for name, path in log_sources().items()
    ]
    return render(request, "dashboard/log_index.html", {"sources": sources})


@require_safe
@staff_member_required
def log_page(request: HttpRequest, name: str) -> HttpResponse:
    """The live tail of one source.

    ``?level=`` and ``?q=`` preset the filters so a filtered view can be
    shared as a link; values the stream would reject are dropped here rather
    than turning the page into an error.
    """
    path = _source_path(name)
    level = request.GET.get("level", "")
    if level not in LEVELS:
        level = ""
    query = request.GET.get("q", "")[:MAX_QUERY]
    stream_base = reverse("log-stream", args=[name])
    params = {"backfill": str(BACKFILL)}
    if level:
        params["level"] = level
    if query:
        params["q"] = query
    return render(
        request,
        "dashboard/log_page.html",
        {
            "name": name,
            "stream_base": stream_base,
            "stream_url": f"{stream_base}?{urlencode(params)}",
            "download_url": reverse("log-download", args=[name]),
            "levels": LEVELS,
            "level": level,
            "query": query,
            "max_lines": MAX_LINES,
            "max_query": MAX_QUERY,
            "backfill": BACKFILL,
            "file": _file_summary(path),
        },
    )


@require_safe
@staff_member_required
async def log_download(request: HttpRequest, name: str) -> HttpResponseBase:
    """The raw file as an attachment; ``Range`` gives 206 so ``curl -C -`` resumes."""
    path = _source_path(name)
    return await ranged_file_response(
        request, path, filename=f"{name}.log", content_type="text/plain; charset=utf-8"
    )
