"""Export job progress streams: ``/streams/exports/`` and ``/streams/exports/<id>/``.

One SSE connection per page. Each job's updates are events named
``job-<id>``; their data is the HTML fragment of the job's bar (what the page
swaps in with htmx), or with ``format=json`` the object
``{"id", "status", "done", "total", "error"}``. Every event carries an
``id:`` (the job's state version), and a (re)connecting client first gets
the current state of every job it watches: a progress bar is a state, so a
reconnect repeats nothing that matters and misses nothing.

Updates come from ``streams.jobs.progress`` (one hub per scope per process; the
channel layer when it crosses processes, otherwise the job rows read 4 times
a second). A user watches only their own jobs (a superuser all); another
user's job id is a 404, decided before the stream starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from streams.conf import heartbeat_seconds
from streams.http.access import stream_staff_required
from streams.http.responses import EventStreamResponse
from streams.http.sse import Event, Message
from streams.jobs.models import ExportJob
from streams.jobs.progress import Scope, subscribe

FORMATS = ("html", "json")


def render_job(job: ExportJob, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(job.state()).decode()
    return render_to_string("streams/fragments.html#job", {"job": job}).strip()


async def job_events(scope: Scope, fmt: str, *, listing: bool = False) -> AsyncIterator[Message]:
    """``job-<id>`` events; with ``listing``, also ``jobs`` when a job appears.

    The list page cannot know about a job created after it loaded, so when
    the stream first sees a job id it sends the whole list (an idempotent
    ``jobs`` swap, each entry wired to its own ``job-<id>`` event) before the
    per-job events.
    """
    latest: dict[int, ExportJob] = {}
    async for jobs in subscribe(scope):
        new = any(job.pk not in latest for job in jobs)
        latest.update((job.pk, job) for job in jobs)
        if listing and new and fmt == "html":
            ordered = sorted(latest.values(), key=lambda job: job.pk, reverse=True)
            html = render_to_string("streams/fragments.html#job_list", {"jobs": ordered}).strip()
            yield Event(html, event="jobs", id=f"jobs.{len(ordered)}.{ordered[0].pk}")
        for job in jobs:
            yield Event(render_job(job, fmt), event=f"job-{job.pk}", id=job.version())


def stream_format(request: HttpRequest) -> str | None:
    fmt = request.GET.get("format", "html")
    return fmt if fmt in FORMATS else None


@require_GET
@stream_staff_required
async def jobs_stream(request: HttpRequest) -> HttpResponseBase:
    fmt = stream_format(request)
    if fmt is None:
        return HttpResponseBadRequest("format must be html or json.\n", content_type="text/plain")
    user: Any = await request.auser()
    scope = Scope() if user.is_superuser else Scope(user_id=user.pk)
    return EventStreamResponse(job_events(scope, fmt, listing=True), heartbeat=heartbeat_seconds())


@require_GET
@stream_staff_required
async def job_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    fmt = stream_format(request)
    if fmt is None:
        return HttpResponseBadRequest("format must be html or json.\n", content_type="text/plain")
    user = await request.auser()
    if not await ExportJob.objects.visible_to(user).filter(pk=pk).aexists():
        raise Http404("No such export job.")
    return EventStreamResponse(job_events(Scope(job_id=pk), fmt), heartbeat=heartbeat_seconds())
