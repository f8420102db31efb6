"""Job progress streams: ``/streams/exports/[<id>/]`` and ``/streams/jobs/[<id>/]``.

One SSE connection per page; events are encoded by ``streams.jobs.encoding``
and come from ``streams.jobs.hub`` (one hub per scope per process). A user
watches only their own jobs (a superuser all); another user's job id is a
404 and a bad ``format`` a 400, both decided before the stream starts.
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
from streams.jobs.encoding import (
    EXPORTS_AMONG_JOBS,
    TRACKED_DETAIL_TEMPLATES,
    TRACKED_TEMPLATES,
    Format,
    job_events,
    merge,
)
from streams.jobs.forms import JobFilterForm, JobStreamForm, TrackedJobStreamForm
from streams.jobs.hub import Scope
from streams.jobs.models import EXPORT_JOBS, TRACKED_JOBS, ExportJob, Job
from streams.jobs.notices import with_notices


def page_stream(events: AsyncIterator[Message], fmt: Format, user: Any) -> AsyncIterator[Message]:
    """A browser page's stream (HTML) also carries the user's job notices."""
    return with_notices(events, user.pk) if fmt == "html" else events


def bad_request(form: JobStreamForm | JobFilterForm) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")


@require_GET
@stream_staff_required
async def jobs_stream(request: HttpRequest) -> HttpResponseBase:
    form = JobStreamForm.from_request(request)
    if not form.is_valid():
        return bad_request(form)
    user: Any = await request.auser()
    scope = Scope(EXPORT_JOBS, user_id=None if user.is_superuser else user.pk)
    events = job_events(scope, form.fmt, listing=True)
    return EventStreamResponse(page_stream(events, form.fmt, user), heartbeat=heartbeat_seconds())


@require_GET
@stream_staff_required
async def job_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    form = JobStreamForm.from_request(request)
    if not form.is_valid():
        return bad_request(form)
    user = await request.auser()
    if not await ExportJob.objects.visible_to(user).filter(pk=pk).aexists():
        raise Http404("No such export job.")
    events = job_events(Scope(EXPORT_JOBS, job_id=pk), form.fmt)
    return EventStreamResponse(page_stream(events, form.fmt, user), heartbeat=heartbeat_seconds())


# /streams/jobs/: tracked jobs of every kind (streams.Job)


@require_GET
@stream_staff_required
async def tracked_jobs_stream(request: HttpRequest) -> HttpResponseBase:
    form = TrackedJobStreamForm(request.GET)
    if not form.is_valid():
        return bad_request(form)
    user: Any = await request.auser()
    user_id = None if user.is_superuser else user.pk
    sources = []
    if form.shows_tracked():
        scope = Scope(TRACKED_JOBS, user_id=user_id)
        sources.append(
            job_events(scope, form.fmt, listing=True, templates=TRACKED_TEMPLATES, keep=form.keep)
        )
    if form.shows_exports():
        # Exports are one kind among the others: their own bars, on the same connection.
        sources.append(
            job_events(
                Scope(EXPORT_JOBS, user_id=user_id),
                form.fmt,
                listing=True,
                templates=EXPORTS_AMONG_JOBS,
                keep=form.keep_export,
                prefix="export",
                list_event="exports",
            )
        )
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
