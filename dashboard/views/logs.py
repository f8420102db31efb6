"""Log pages: the overview, the list of sources, the live tail and the raw download.

The pages are thin shells: every line they show arrives over exactly one SSE
connection per tab (``/streams/overview/`` or ``/streams/logs/<name>/``) and is
swapped in by htmx's SSE extension; ``static/streamboard/logpage.js`` adds the
controls (filters that reconnect, pause with a buffer, follow, clear, the
connection indicator). A source is picked by its configured name, never by a
path from the request, so an unknown name is a 404 before anything is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final, cast
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from streams.http.responses import TextStreamResponse
from streams.jobs.overview import overview_sections
from streams.logs.download import (
    DownloadForm,
    filtered_download,
    is_filtered,
    redacted_file,
    redacted_text,
)
from streams.logs.files.source import FileSource
from streams.logs.follow import LineFilter
from streams.logs.forms import MAX_QUERY, PermalinkForm
from streams.logs.history import rotation_patterns
from streams.logs.lines import LEVELS
from streams.logs.patterns import PatternError, compile_regex
from streams.logs.redacted import client_redactor
from streams.logs.sources import LogSource, all_sources, get_source_or_404
from streams.logs.timestamps import TimeContext

#: Lines the page keeps in the DOM; older ones are dropped so memory stays bounded.
MAX_LINES: Final = 2000
#: Lines asked for on (re)connection with new filters.
BACKFILL: Final = 200


def _summary(source: LogSource) -> dict[str, object]:
    """What the page says about a source before the stream starts (it may not exist yet)."""
    summary = source.summary()
    return {"exists": summary.exists, "size": summary.size}


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
        for name in all_sources()
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
            **_summary(source),
        }
        for name, source in all_sources().items()
    ]
    return render(request, "dashboard/log_index.html", {"sources": sources})


@require_safe
@staff_member_required
def log_page(request: HttpRequest, name: str) -> HttpResponse:
    """The live tail of one source.

    ``?level=``, ``?q=``, ``?re=`` and ``?exclude=`` preset the filters so a filtered view can be
    shared as a link; values the stream would reject are dropped here rather
    than turning the page into an error. ``?at=<cursor>`` (a search result's
    permalink) opens the stream with the lines around that line, which the
    page highlights; a malformed one is a 400 naming ``at``.
    """
    source = get_source_or_404(name)
    at_form = PermalinkForm(request.GET, source=source)
    if not at_form.is_valid():
        return HttpResponseBadRequest(
            at_form.error_text(), content_type="text/plain; charset=utf-8"
        )
    at = at_form.cleaned_data.get("at")
    level = request.GET.get("level", "")
    if level not in LEVELS:
        level = ""
    query = request.GET.get("q", "")[:MAX_QUERY]
    patterns = {key: _valid_pattern(request.GET.get(key, ""), key) for key in ("re", "exclude")}
    stream_base = reverse("log-stream", args=[name])
    params = {"backfill": str(BACKFILL)}
    if level:
        params["level"] = level
    if query:
        params["q"] = query
    params.update({key: value for key, value in patterns.items() if value})
    if at is not None:
        params["at"] = str(at)
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
            "regex": patterns["re"],
            "exclude": patterns["exclude"],
            "at": str(at) if at is not None else "",
            "max_lines": MAX_LINES,
            "max_query": MAX_QUERY,
            "backfill": BACKFILL,
            "file": _summary(source),
        },
    )


def _valid_pattern(pattern: str, parameter: str) -> str:
    """``pattern`` if RE2 takes it, else empty (the page drops what the stream would refuse)."""
    try:
        compile_regex(pattern, parameter=parameter)
    except PatternError:
        return ""
    return pattern


@require_safe
@staff_member_required
async def log_download(request: HttpRequest, name: str) -> HttpResponseBase:
    """The source as an attachment: raw, redacted, or just the lines a filter keeps.

    * No filter, and a user who may see lines unredacted (or redaction off):
      the raw file; ``Range`` gives 206 so ``curl -C -`` resumes, with ``ETag``.
    * No filter, redaction on for this user: the file redacted, whole (200,
      ``Accept-Ranges: none``: offsets into redacted bytes would not be the file's).
    * Any of ``level``, ``q``, ``re``, ``exclude``, ``since``, ``until``: the
      matching lines of the file and its rotated siblings, oldest first
      (``streams.logs.download``); a bad value is a 400 naming it.
    """
    source = get_source_or_404(name)
    filtered = is_filtered(request.GET)
    form = DownloadForm(request.GET)
    if filtered and not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    redactor = await client_redactor(request)
    if not filtered and redactor is None:
        response = await source.download(request)
        if response is None:
            raise Http404("This log source has no download.")
        return response
    if not isinstance(source, FileSource):
        if filtered:
            raise Http404("This log source has no filtered download.")
        response = await source.download(request)
        if response is None:
            raise Http404("This log source has no download.")
        if isinstance(response, StreamingHttpResponse) and redactor is not None:
            response.streaming_content = redacted_text(
                cast(AsyncIterator[bytes], response.streaming_content), redactor
            )
        return response
    path = source.path
    if not await asyncio.to_thread(path.is_file):
        raise Http404("No such file.")
    if filtered:
        line_filter = LineFilter(form.line_matcher(), redactor)
        # Line times without a zone are the site's (TIME_ZONE), like since/until without one.
        context = TimeContext(timezone.get_default_timezone())
        rotated = rotation_patterns(name)
        body = filtered_download(path, line_filter, form.time_range(), context, rotated)
        filename = f"{name}-filtered.log"
    else:
        assert redactor is not None
        body = redacted_file(path, redactor)
        filename = f"{name}.log"
    return TextStreamResponse(
        body,
        headers={
            "Content-Disposition": content_disposition_header(True, filename) or "attachment",
            "Accept-Ranges": "none",
        },
    )
