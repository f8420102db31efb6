"""History search: the page ``/logs/<name>/search`` and its stream ``/streams/logs/<name>/search``.

Thin wiring, in order: method guard, staff (the page redirects to the login,
the stream answers 403), known source (404), the query form (400 naming the
parameter), then the producer (``streams.logs.search.search_events`` over
``streams.logs.history.history_files``), the encoder
(``streams.logs.search_encoding``) and the response. Whether the user may see
unredacted lines (``streams.view_unredacted_logs``) is decided before the
first byte, like everything that touches the database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_safe

from streams.conf import heartbeat_seconds, log_sources
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse
from streams.logs.history import SearchOptions, history_files, rotation_patterns
from streams.logs.lines import LEVELS
from streams.logs.patterns import MAX_PATTERN
from streams.logs.redacted import client_redactor
from streams.logs.search import search_events
from streams.logs.search_encoding import search_messages
from streams.logs.search_forms import LogSearchForm
from streams.logs.timestamps import TimeContext

#: The parameters a search page passes on to its stream.
SEARCH_PARAMETERS = ("level", "q", "re", "exclude", "since", "until", "limit")


def _source_path(name: str) -> Path:
    try:
        return log_sources()[name]
    except KeyError:
        raise Http404("No such log source.") from None


@require_GET
@stream_staff_required
async def log_search_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    path = _source_path(name)
    form = LogSearchForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.search_query()
    redactor = await client_redactor(request)
    files = await asyncio.to_thread(history_files, path, rotation_patterns(name))
    page = reverse("log-page", args=[name])
    # Line times without a zone are the site's (TIME_ZONE), like since/until without one.
    options = SearchOptions(context=TimeContext(timezone.get_default_timezone()))
    events = search_events(
        files, query.matcher, query.time_range, limit=query.limit, options=options
    )
    messages = search_messages(events, query.matcher, redactor, lambda at: f"{page}?at={at}")
    return EventStreamResponse(messages, heartbeat=heartbeat_seconds(), retry_ms=None)


@require_safe
@staff_member_required
def log_search_page(request: HttpRequest, name: str) -> HttpResponse:
    """The search form; once submitted, its results stream in from ``log_search_stream``.

    An invalid query is shown on the page with the stream's own messages
    (status 400), not sent to the stream.
    """
    _source_path(name)
    params = {key: request.GET[key] for key in SEARCH_PARAMETERS if request.GET.get(key)}
    form = LogSearchForm(params)
    valid = form.is_valid() if params else False
    stream_url = ""
    if valid:
        stream_url = f"{reverse('log-search-stream', args=[name])}?{urlencode(params)}"
    return render(
        request,
        "dashboard/log_search.html",
        {
            "name": name,
            "params": params,
            "levels": LEVELS,
            "max_pattern": MAX_PATTERN,
            "errors": form.error_text().strip().splitlines() if params and not valid else [],
            "stream_url": stream_url,
            "page_url": reverse("log-page", args=[name]),
        },
        status=400 if params and not valid else 200,
    )
