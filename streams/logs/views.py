"""Live log streams: ``/streams/logs/<name>/`` (SSE), ``<name>.txt`` and the overview.

Thin wiring, each view a guard ladder: method guard, staff (403), known
source (404, ``get_source_or_404``), query form (400, including a malformed
``Last-Event-ID``), then producer (``streams.logs.follow.follow_log``),
encoder (``streams.logs.encoding``) and response. Nothing touches the
database once the stream has started: the session is read by
``stream_staff_required`` before.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from django.http import HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from streams.conf import heartbeat_seconds
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse, TextStreamResponse
from streams.jobs.encoding import merge
from streams.jobs.notices import with_notices
from streams.jobs.overview import overview_job_events
from streams.logs.encoding import sse_events, text_chunks
from streams.logs.follow import LogEvent, follow_log
from streams.logs.forms import LogQuery, LogStreamForm
from streams.logs.overview import overview_events
from streams.logs.sources import LogSource, all_sources, get_source_or_404


def bad_request(form: LogStreamForm) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")


def follow(source: LogSource, query: LogQuery) -> AsyncGenerator[LogEvent]:
    """The producer a validated query asks for (idle beats at the configured heartbeat)."""
    return follow_log(
        source,
        backfill=query.backfill,
        after=query.after,
        line_filter=query.line_filter,
        idle=heartbeat_seconds(),
    )


@require_GET
@stream_staff_required
async def log_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    source = get_source_or_404(name)
    form = LogStreamForm.from_request(request, source)
    if not form.is_valid():
        return bad_request(form)
    query = form.log_query()
    messages = sse_events(follow(source, query), query.fmt)
    if (
        query.fmt == "html"
    ):  # a browser page: the user's job notices ride along (no id: resume intact)
        messages = with_notices(messages, (await request.auser()).pk)
    return EventStreamResponse(messages, heartbeat=None)


@require_GET
@stream_staff_required
async def log_text_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    source = get_source_or_404(name)
    form = LogStreamForm.from_request(request, source)
    if not form.is_valid():
        return bad_request(form)
    return TextStreamResponse(text_chunks(follow(source, form.log_query())))


def page_url(name: str) -> str:
    try:
        return reverse("log-page", args=[name])
    except NoReverseMatch:
        return f"/logs/{name}/"


@require_GET
@stream_staff_required
async def overview_stream(request: HttpRequest) -> HttpResponseBase:
    sources = all_sources()
    urls = {name: page_url(name) for name in sources}
    user = await request.auser()
    # The page's job panel (running jobs, recent failures) and notices ride along.
    cards = merge(overview_events(sources, urls), overview_job_events(user))
    messages = with_notices(cards, user.pk)
    return EventStreamResponse(messages, heartbeat=heartbeat_seconds())
