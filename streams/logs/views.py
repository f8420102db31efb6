"""Live log streams: ``/streams/logs/<name>/`` (SSE), ``<name>.txt`` and the overview.

Thin wiring, in order: method guard, staff (403), known source (404), query
form (400, including a malformed ``Last-Event-ID``), then producer
(``streams.logs.follow.follow_log``), encoder (``streams.logs.encoding``) and
response. Nothing touches the database once the stream has started: the
session is read by ``stream_staff_required`` before.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from streams.conf import heartbeat_seconds, log_sources
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse, TextStreamResponse
from streams.jobs.encoding import merge
from streams.jobs.notices import with_notices
from streams.jobs.overview import overview_job_events
from streams.logs.encoding import Format, sse_events, text_chunks
from streams.logs.follow import LogEvent, follow_log
from streams.logs.forms import LogStreamForm
from streams.logs.overview import overview_events


def source_path(name: str) -> Path:
    try:
        return log_sources()[name]
    except KeyError:
        raise Http404("No such log source.") from None


def follow_request(
    request: HttpRequest, name: str
) -> tuple[AsyncGenerator[LogEvent], Format] | HttpResponseBadRequest:
    """The producer and format a log stream request asks for, or its 400 (404: unknown source)."""
    path = source_path(name)
    form = LogStreamForm.from_request(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.log_query()
    events = follow_log(
        path,
        backfill=query.backfill,
        after=query.after,
        line_filter=query.line_filter,
        idle=heartbeat_seconds(),
    )
    return events, query.fmt


@require_GET
@stream_staff_required
async def log_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    followed = follow_request(request, name)
    if isinstance(followed, HttpResponseBase):
        return followed
    events, fmt = followed
    messages = sse_events(events, fmt)
    if fmt == "html":  # a browser page: the user's job notices ride along (no id: resume intact)
        messages = with_notices(messages, (await request.auser()).pk)
    return EventStreamResponse(messages, heartbeat=None)


@require_GET
@stream_staff_required
async def log_text_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    followed = follow_request(request, name)
    if isinstance(followed, HttpResponseBase):
        return followed
    events, _ = followed
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
    user = await request.auser()
    # The page's job panel (running jobs, recent failures) and notices ride along.
    cards = merge(overview_events(sources, urls), overview_job_events(user))
    messages = with_notices(cards, user.pk)
    return EventStreamResponse(messages, heartbeat=heartbeat_seconds())
