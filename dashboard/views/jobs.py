"""Tracked job pages: ``/jobs/`` (every kind, exports included, filterable), one job, cancel, retry.

Pages need a signed-in staff user (else a redirect to the admin login). A
user sees and controls only their own jobs (a superuser all of them):
another user's job id is a 404. The bars move over one SSE connection per
page (``/streams/jobs/``). ``POST /jobs/start/customer-summary`` starts the
demo's tracked task.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from dashboard.tasks import recompute_customer_summary
from streams.jobs.forms import JobFilterForm
from streams.jobs.liveness import reap_all
from streams.jobs.models import TABLES, Job, JobStatus
from streams.jobs.tracking import cancel, retry, start

LIST_LIMIT = 100


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def visible_job(request: HttpRequest, pk: int) -> Job:
    return get_object_or_404(Job.objects.visible_to(request.user), pk=pk)


@require_GET
@staff_member_required
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    reap_all()
    kinds: set[str] = set()
    sections = []
    for table in TABLES:
        visible = table.visible_to(request.user)
        if table.kind is None:
            kinds.update(visible.values_list("kind", flat=True).distinct())
        elif visible.exists():
            kinds.add(table.kind)
        if form.shows(table):
            jobs = form.apply(table, visible).select_related("user")[:LIST_LIMIT]
            sections.append({"table": table, "jobs": jobs})
    context: dict[str, Any] = {
        "form": form,
        "sections": sections,
        "kinds": sorted(kinds),
        "statuses": JobStatus.choices,
        "query": request.GET.urlencode(),
    }
    return render(request, "dashboard/job_list.html", context)


@require_GET
@staff_member_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    reap_all()
    job = visible_job(request, pk)
    context = {
        "job": job,
        "arguments": json.dumps({"args": job.args, "kwargs": job.kwargs}, sort_keys=True),
        "retries": list(job.retries.order_by("pk")),
    }
    return render(request, "dashboard/job_detail.html", context)


@require_POST
@staff_member_required
def job_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Cancel a queued or running job; its task stops at its next progress save."""
    job = visible_job(request, pk)
    cancelled = cancel(job)
    if request.htmx:
        return HttpResponse(status=204)
    if cancelled:
        messages.success(request, f"Job #{job.pk} cancelled.")
    return HttpResponseRedirect(reverse("job", args=[job.pk]), status=303)


@require_POST
@staff_member_required
def job_retry(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The same task with the same arguments, as a new job linked to this one."""
    job = visible_job(request, pk)
    new = retry(job, user=request.user)
    url = reverse("job", args=[new.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url, status=303)


@require_POST
@staff_member_required
def start_customer_summary(request: HttpRequest) -> HttpResponse:
    job = start(recompute_customer_summary, user=request.user)
    return HttpResponseRedirect(reverse("job", args=[job.pk]), status=303)
