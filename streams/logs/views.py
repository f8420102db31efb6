"""Live log streams: ``/streams/logs/<name>/`` (SSE), ``<name>.txt`` and the overview.

Thin wiring, each view a guard ladder: method guard, staff (403), known
source (404, ``get_source_or_404``), query form (400, including a malformed
``Last-Event-ID``), the user's redactor (``streams.logs.redacted``; decided
before the first byte, like everything that reads the database), then
producer (``streams.logs.follow.follow_log``), encoder
(``streams.logs.encoding``) and response. Nothing touches the database once
the stream has started: the session is read by ``stream_staff_required``
before.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from dataclasses import replace

from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse
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
from streams.logs.fanout import DirectTarget
from streams.logs.follow import LogEvent, follow_log
from streams.logs.forms import AT_CONTEXT_LINES, LogQuery, LogStreamForm
from streams.logs.overview import overview_events
from streams.logs.push import push_target
from streams.logs.redacted import client_redactor
from streams.logs.redaction import Redactor
from streams.logs.sources import LogSource, all_sources, get_source_or_404


def bad_request(form: LogStreamForm) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")


async def follow(
    source: LogSource,
    query: LogQuery,
    redactor: Redactor | None,
    direct: DirectTarget | None = None,
) -> AsyncGenerator[LogEvent]:
    """The producer a validated query asks for (idle beats at the configured heartbeat).

    A permalink (``at=``) resumes from ``AT_CONTEXT_LINES`` lines before its
    line; a ``Last-Event-ID`` (the browser reconnecting) wins over it.
    ``direct``: push-mode delivery where the server offers it
    (``streams.logs.push``).
    """
    after = query.after
    if after is None and query.at is not None:
        after = await source.context_start(query.at, AT_CONTEXT_LINES)
    return follow_log(
        source,
        backfill=query.backfill,
        after=after,
        line_filter=replace(query.line_filter, redactor=redactor),
        idle=heartbeat_seconds(),
        direct=direct,
    )


@require_GET
@stream_staff_required
async def log_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    source = get_source_or_404(name)
    form = LogStreamForm.from_request(request, source)
    if not form.is_valid():
        return bad_request(form)
    query = form.log_query()
    redactor = await client_redactor(request)
    direct = push_target(request, query.fmt, redactor)
    messages = sse_events(await follow(source, query, redactor, direct), query.fmt)
    # A browser page: the user's job notices ride along (without id:, so resume is intact).
    if query.fmt == "html":
        messages = with_notices(messages, (await request.auser()).pk)
    return EventStreamResponse(messages, heartbeat=None)


@require_GET
@stream_staff_required
async def log_text_stream(request: HttpRequest, name: str) -> HttpResponseBase:
    source = get_source_or_404(name)
    form = LogStreamForm.from_request(request, source)
    if not form.is_valid():
        return bad_request(form)
    redactor = await client_redactor(request)
    direct = push_target(request, "text", redactor)
    events = await follow(source, form.log_query(), redactor, direct)
    return TextStreamResponse(text_chunks(events))


@require_GET
@stream_staff_required
async def log_clients(request: HttpRequest, name: str) -> HttpResponseBase:
    """This process's live clients of a source, and how many are in push mode (JSON).

    For operators and tests: which path deliveries take. Per server process,
    like the fan-out it reads (``serve --workers N`` has one per worker).
    """
    summary = get_source_or_404(name).summary()
    return JsonResponse(
        {
            "source": name,
            "process": os.getpid(),
            "clients": summary.clients,
            "pushed": summary.pushed,
        }
    )


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
    redactor = await client_redactor(request)
    # The page's job panel (running jobs, recent failures) and notices ride along.
    cards = merge(overview_events(sources, urls, redactor), overview_job_events(user))
    messages = with_notices(cards, user.pk)
    return EventStreamResponse(messages, heartbeat=heartbeat_seconds())
