"""The "Export in the background…" admin action, on every exportable model.

The action is added to the ModelAdmin of every model in the export allow-list
(``install_export_action``, called from ``StreamsConfig.ready`` once the admin
has autodiscovered every app's registrations). Like Django's own "delete
selected" it answers twice:

1. From the changelist, it renders a confirmation page
   (``admin/streams/export_confirmation.html``): how many rows the selection
   or the filtered changelist holds, the format and the fields to export
   (``ExportChoiceForm``: the allow-listed fields only, all checked).
2. The page posts back to the same changelist URL with ``post=yes``; the
   selection rides along: the ticked keys and ``select_across`` as hidden
   inputs, the changelist's filters and search in the form's action URL (the
   ModelAdmin rebuilds the queryset from ``request.GET``, so that is where
   they must be). A valid choice stores an ``ExportJob`` (a ``JobQuery`` with
   the chosen fields, and the format) and enqueues ``run_export_job`` once the
   transaction commits; an invalid one (a field outside the allow-list, none
   at all) is a 400 showing the page again, and no job.

It never exports in the request.

* Rows ticked on the page: the job stores their primary keys.
* "Select all N" (``select_across``): the job stores the changelist's filter
  and search parameters, not a list of keys, and the worker rebuilds the
  changelist's queryset; 10 million rows cost the request a few bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.db import models
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from streams.exports.admin_form import ExportChoiceForm
from streams.exports.allow_list import exportables, get_exportable
from streams.exports.changelist import changelist_params
from streams.exports.formats import ExportFormat
from streams.exports.job_query import JobQuery
from streams.exports.task import enqueue_on_commit, retry_export
from streams.jobs.models import ExportJob

CONFIRMATION_TEMPLATE = "admin/streams/export_confirmation.html"


def create_export_job(
    request: HttpRequest,
    model_admin: admin.ModelAdmin[Any],
    queryset: models.QuerySet[Any],
    fmt: ExportFormat = "ndjson",
    fields: Sequence[str] | None = None,
) -> ExportJob:
    """Store the job for this action request and enqueue its task after commit.

    ``fields`` are the chosen ones, in order (``None``: every allow-listed one).
    """
    if is_select_across(request):
        query = JobQuery.of_changelist(changelist_params(request.GET))
    else:
        # A ticked selection is at most one changelist page of keys.
        query = JobQuery.selection(queryset.order_by("pk").values_list("pk", flat=True))
    if fields is not None:
        query = query.with_fields(fields)
    job = ExportJob.objects.create(
        user=cast(Any, request.user),
        model_label=model_admin.model._meta.label_lower,
        query=query.to_json(),
        format=fmt,
    )
    enqueue_on_commit(job)
    return job


def is_select_across(request: HttpRequest) -> bool:
    """Whether "select all N" was clicked: the action applies to the whole filtered list."""
    return request.POST.get("select_across") == "1"


@admin.action(description="Export in the background…", permissions=["view"])
def export_in_background(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: models.QuerySet[Any]
) -> TemplateResponse | HttpResponseRedirect:
    exportable = get_exportable(model_admin.model._meta.label_lower)
    if request.POST.get("post") != "yes":
        return confirmation_page(model_admin, request, queryset, ExportChoiceForm(exportable))
    form = ExportChoiceForm(exportable, request.POST)
    if not form.is_valid():
        return confirmation_page(model_admin, request, queryset, form, status=400)
    job = create_export_job(request, model_admin, queryset, form.chosen_format, form.chosen_fields)
    model_admin.message_user(
        request,
        f"Export #{job.pk} started in the background; follow it on its page.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("export-job", args=[job.pk]))


def confirmation_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[Any],
    form: ExportChoiceForm,
    status: int = 200,
) -> TemplateResponse:
    """The intermediate page: the row count, the choice, and the selection kept for the POST."""
    opts = model_admin.model._meta
    count = queryset.count()
    request.current_app = model_admin.admin_site.name
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Export in the background",
        "subtitle": None,
        "opts": opts,
        "form": form,
        "count": count,
        "objects_name": str(model_ngettext(opts, count)),
        "select_across": is_select_across(request),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_name": export_in_background.__name__,
        "changelist_query": request.GET.urlencode(),
        "media": model_admin.media,
    }
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context, status=status)


@admin.action(description="Retry the selected exports", permissions=["change"])
def retry_exports(
    model_admin: admin.ModelAdmin[ExportJob],
    request: HttpRequest,
    queryset: models.QuerySet[ExportJob],
) -> None:
    """Each ended export again, as a new job of the same query and format (active ones skipped)."""
    retried = [
        retry_export(job, user=request.user)
        for job in queryset.exclude(status__in=ExportJob.ACTIVE).order_by("pk")
    ]
    ids = ", ".join(f"#{job.pk}" for job in retried) or "none (active exports are not retried)"
    model_admin.message_user(request, f"Retried as {ids}.", messages.SUCCESS)


def install_export_action(site: admin.AdminSite | None = None) -> None:
    """Add the action to the ModelAdmin of every exportable model registered on ``site``.

    The export jobs' own admin (``streams.jobs.admin``, a layer below, which
    cannot name the export task) gets its retry action here too.
    """
    site = site or admin.site
    if site.is_registered(ExportJob):
        jobs_admin = site.get_model_admin(ExportJob)
        if retry_exports not in (jobs_admin.actions or []):
            jobs_admin.actions = [*(jobs_admin.actions or []), retry_exports]
    for exportable in exportables():
        if not site.is_registered(exportable.model):
            continue
        model_admin = site.get_model_admin(exportable.model)
        actions = list(model_admin.actions or [])
        if export_in_background not in actions:
            model_admin.actions = [*actions, export_in_background]
