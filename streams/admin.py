"""The "Export to NDJSON in the background" action; the job admins live in ``streams.jobs.admin``.

The action is added to the ModelAdmin of every model in the export allow-list
(``install_export_action``, called from ``StreamsConfig.ready`` once the admin
has autodiscovered every app's registrations). It never exports in the
request: it stores what to export on an ``ExportJob`` and enqueues
``run_export_job`` once the transaction commits.

* Rows ticked on the page: the job stores their primary keys.
* "Select all N" (``select_across``): the job stores the changelist's filter
  and search parameters, not a list of keys, and the worker rebuilds the
  changelist's queryset; 10 million rows cost the request a few bytes.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db import models, transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from streams.exports.producer import exportables
from streams.jobs import admin as jobs_admin  # noqa: F401  (registers the job admins)
from streams.jobs.models import ExportJob


def create_export_job(
    request: HttpRequest, model_admin: admin.ModelAdmin[Any], queryset: models.QuerySet[Any]
) -> ExportJob:
    """Store the job for this action request and enqueue its task after commit."""
    from streams.exports.task import changelist_params, run_export_job

    opts = model_admin.model._meta
    query: dict[str, Any] = {"params": {}}
    if request.POST.get("select_across") == "1":
        query["changelist"] = changelist_params(request.GET)
    else:
        # A ticked selection is at most one changelist page of keys.
        query["pks"] = list(queryset.order_by("pk").values_list("pk", flat=True))
    job = ExportJob.objects.create(
        user=cast(Any, request.user), model_label=opts.label_lower, query=query, format="ndjson"
    )

    def enqueue() -> None:
        result = run_export_job.enqueue(job.pk)
        ExportJob.objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(enqueue)
    return job


@admin.action(description="Export to NDJSON in the background", permissions=["view"])
def export_in_background(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: models.QuerySet[Any]
) -> HttpResponseRedirect:
    job = create_export_job(request, model_admin, queryset)
    model_admin.message_user(
        request,
        f"Export #{job.pk} started in the background; follow it on its page.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("export-job", args=[job.pk]))


def install_export_action(site: admin.AdminSite | None = None) -> None:
    """Add the action to the ModelAdmin of every exportable model registered on ``site``."""
    site = site or admin.site
    for exportable in exportables():
        model_admin = site._registry.get(exportable.model)
        if model_admin is None:
            continue
        actions = list(model_admin.actions or [])
        if export_in_background not in actions:
            model_admin.actions = [*actions, export_in_background]
