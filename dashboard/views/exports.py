"""Export job pages: the list, one job, cancel, retry, and the download.

Pages need a signed-in staff user (else a redirect to the admin login). A
user sees and controls only their own jobs (a superuser all of them):
another user's job id is a 404, never a 403 that would confirm it exists.
Stale jobs (a worker killed mid-export) are reaped whenever these pages
load, so nobody is shown a job "running" for ever.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from streams.exports.formats import get_format
from streams.exports.task import retry_export
from streams.http.ranges import ranged_file_response
from streams.jobs.models import EXPORT_JOBS, ExportJob, reap_stale_jobs
from streams.jobs.progress import publish


def visible_job(request: HttpRequest, pk: int) -> ExportJob:
    return get_object_or_404(ExportJob.objects.visible_to(request.user), pk=pk)


@require_GET
@staff_member_required
def job_list(request: HttpRequest) -> HttpResponse:
    reap_stale_jobs()
    jobs = ExportJob.objects.visible_to(request.user).select_related("user")[:100]
    return render(request, "dashboard/export_list.html", {"jobs": jobs})


@require_GET
@staff_member_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    reap_stale_jobs()
    job = visible_job(request, pk)
    query_text = json.dumps(job.query, sort_keys=True)
    return render(request, "dashboard/export_detail.html", {"job": job, "query_text": query_text})


@require_POST
@staff_member_required
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a queued or running job (CSRF-protected by the middleware).

    A guarded update: only an active job becomes cancelled. The worker sees it
    at its next progress save (at most ``STREAMBOARD_EXPORT_PROGRESS_SECONDS``
    later), stops and removes its partial file.
    """
    job = visible_job(request, pk)
    cancelled = ExportJob.objects.filter(pk=job.pk, status__in=ExportJob.ACTIVE).update(
        status=ExportJob.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if cancelled:
        # The worker removes its own partial file when it sees the cancel.
        publish(EXPORT_JOBS, job)
    if getattr(request, "htmx", False):
        return HttpResponse(status=204)
    if cancelled:
        messages.success(request, f"Export #{job.pk} cancelled.")
    return HttpResponseRedirect(reverse("export-job", args=[job.pk]), status=303)


@require_POST
@staff_member_required
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """The same export (query, fields, format) again as a new job; 409 while this one runs."""
    job = visible_job(request, pk)
    if job.is_active:
        return HttpResponse(
            f"Export #{job.pk} is still {job.status}: cancel it first.\n",
            status=409,
            content_type="text/plain; charset=utf-8",
        )
    new = retry_export(job, user=request.user)
    url = reverse("export-job", args=[new.pk])
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url, status=303)


@require_safe
@staff_member_required
async def job_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The finished file, with ``Range`` (206, ``curl -C -``), an ``ETag``, and ``HEAD``."""
    job = await sync_to_async(visible_job)(request, pk)
    path = job.result_path()
    if path is None:
        raise Http404("This export has no finished file.")
    finished = job.finished_at.timestamp() if job.finished_at else 0
    return await ranged_file_response(
        request,
        path,
        filename=job.download_name(),
        content_type=get_format(job.format).content_type,
        etag=f"export-{job.pk}-{job.bytes_written}-{finished:.6f}",
    )
