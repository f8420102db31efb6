"""Export job progress streams: ``/streams/exports/`` and ``/streams/exports/<id>/``.

One SSE connection per page; events are encoded by ``streams.jobs.encoding``
(the export bar's templates come with ``EXPORT_JOBS``) and come from
``streams.jobs.hub``. A user watches only their own jobs (a superuser all);
another user's job id is a 404 and a bad ``format`` a 400, both decided
before the stream starts. HTML streams also carry the user's job notices.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from streams.conf import heartbeat_seconds
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse
from streams.jobs.encoding import job_events
from streams.jobs.forms import JobStreamForm
from streams.jobs.hub import Scope
from streams.jobs.models import EXPORT_JOBS, ExportJob
from streams.jobs.views import bad_request, page_stream


@require_GET
@stream_staff_required
async def jobs_stream(request: HttpRequest) -> HttpResponseBase:
    form = JobStreamForm.from_request(request)
    if not form.is_valid():
        return bad_request(form)
    user: Any = await request.auser()
    scope = Scope(EXPORT_JOBS, user_id=None if user.is_superuser else user.pk)
    events = job_events(scope, form.fmt, templates=EXPORT_JOBS.templates, listing=True)
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
    events = job_events(Scope(EXPORT_JOBS, job_id=pk), form.fmt, templates=EXPORT_JOBS.templates)
    return EventStreamResponse(page_stream(events, form.fmt, user), heartbeat=heartbeat_seconds())
