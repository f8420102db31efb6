"""Live log streams: ``/streams/logs/<name>/`` (SSE), ``<name>.txt`` and the overview.

Thin wiring, in order: method guard, staff (403), known source (404), query
form (400, including a malformed ``Last-Event-ID``), then producer
(``streams.log_stream.follow_log``), encoder (``streams.log_encoding``) and
response. Nothing touches the database once the stream has started: the
session is read by ``stream_staff_required`` before.
"""

from __future__ import annotations

from pathlib import Path

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from streams.access import stream_staff_required
from streams.conf import log_sources
from streams.log_encoding import sse_events, text_chunks
from streams.log_forms import LogStreamForm
from streams.log_overview import overview_events
from streams.log_stream import follow_log
from streams.responses import EventStreamResponse, TextStreamResponse


async def release_database() -> None:
    """Close this request's database connection before a long stream starts.

    ``stream_staff_required`` read the session and user in the request's
    thread; Django would keep that connection open until the response ends,
    i.e. for the whole stream. Nothing after this point touches the database.
    """
    await sync_to_async(_close_connections)()


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        # Inside an atomic block (a test's transaction) closing would break it.
        if not connection.in_atomic_block:
            connection.close()


def source_path(name: str) -> Path:
    try:
        return log_sources()[name]
    except KeyError:
        raise Http404("No such log source.") from None


@require_GET
@stream_staff_required
async def log_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    path = source_path(name)
    form = LogStreamForm.from_request(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.log_query()
    events = follow_log(
        path, backfill=query.backfill, after=query.after, line_filter=query.line_filter
    )
    await release_database()
    return EventStreamResponse(sse_events(events, query.fmt))


@require_GET
@stream_staff_required
async def log_text_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    path = source_path(name)
    form = LogStreamForm.from_request(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.log_query()
    events = follow_log(
        path, backfill=query.backfill, after=query.after, line_filter=query.line_filter
    )
    await release_database()
    return TextStreamResponse(text_chunks(events))


def page_url(name: str) -> str:
    try:
        return reverse("log-page", args=[name])
    except NoReverseMatch:
        return f"/logs/{name}/"


@require_GET
@stream_staff_required
async def overview_stream(request: HttpRequest) -> HttpResponseBase:
    sources = log_sources()
    urls = {name: page_url(name) for name in sources}
    await release_database()
    return EventStreamResponse(overview_events(sources, urls))
