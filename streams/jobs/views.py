"""Tracked job streams: ``/streams/jobs/`` (every kind, every table) and ``/streams/jobs/<id>/``.

One SSE connection per page; events are encoded by ``streams.jobs.encoding``
and come from ``streams.jobs.hub``. The list merges every ``JobTable``'s jobs
(``Job`` of every kind, and exports) on the one connection, each table's
events named by its prefix. A user watches only their own jobs (a superuser
all); another user's job id is a 404, a bad ``format``/``kind``/``status`` a
400, both decided before the stream starts. HTML streams also carry the
user's job notices (``streams.jobs.notices``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from streams.conf import heartbeat_seconds
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse
from streams.http.sse import Message
from streams.jobs.encoding import Format, job_events, merge
from streams.jobs.forms import JobFilterForm, JobStreamForm, TrackedJobStreamForm
from streams.jobs.hub import Scope
from streams.jobs.models import TABLES, TRACKED_DETAIL_TEMPLATES, TRACKED_JOBS, Job
from streams.jobs.notices import with_notices


def page_stream(events: AsyncIterator[Message], fmt: Format, user: Any) -> AsyncIterator[Message]:
    """A browser page's stream (HTML) also carries the user's job notices."""
    return with_notices(events, user.pk) if fmt == "html" else events


def bad_request(form: JobStreamForm | JobFilterForm) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")


@require_GET
@stream_staff_required
async def tracked_jobs_stream(request: HttpRequest) -> HttpResponseBase:
    form = TrackedJobStreamForm(request.GET)
    if not form.is_valid():
        return bad_request(form)
    user: Any = await request.auser()
    user_id = None if user.is_superuser else user.pk
    sources = [
        job_events(
            Scope(table, user_id=user_id),
            form.fmt,
            templates=table.listed,
            listing=True,
            keep=form.keeper(table),
            prefix=table.prefix,
            list_event=table.list_event,
        )
        for table in TABLES
        if form.shows(table)
    ]
    events = page_stream(merge(*sources), form.fmt, user)
    return EventStreamResponse(events, heartbeat=heartbeat_seconds())


@require_GET
@stream_staff_required
async def tracked_job_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    form = JobStreamForm.from_request(request)
    if not form.is_valid():
        return bad_request(form)
    user = await request.auser()
    if not await Job.objects.visible_to(user).filter(pk=pk).aexists():
        raise Http404("No such job.")
    scope = Scope(TRACKED_JOBS, job_id=pk)
    events = job_events(scope, form.fmt, templates=TRACKED_DETAIL_TEMPLATES)
    return EventStreamResponse(page_stream(events, form.fmt, user), heartbeat=heartbeat_seconds())
