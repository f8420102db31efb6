"""The admin of tracked jobs: read-only rows (jobs come from their tasks), cancel and retry.

Cancel (jobs and exports) is the same guarded update as the pages' button;
retry (``Job``) enqueues the same task with the same arguments as a new job
linked to the old one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from streams.jobs.liveness import reap_all
from streams.jobs.models import ACTIVE_STATUSES, TABLES, ExportJob, Job, reap_stale_jobs
from streams.jobs.tracking import cancel, retry


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin[ExportJob]):
    list_display = [
        "id",
        "model_label",
        "user",
        "status",
        "rows_done",
        "rows_total",
        "bytes_written",
        "created_at",
        "finished_at",
        "page_link",
    ]
    list_filter = ["status", "model_label", "format"]
    search_fields = ["model_label", "user__username", "error"]
    actions = ["cancel_selected"]
    list_select_related = ["user"]
    readonly_fields = [
        "user",
        "model_label",
        "query",
        "format",
        "status",
        "rows_done",
        "rows_total",
        "bytes_written",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "error",
        "file_name",
        "task_id",
        "page_link",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs come from the export action, never from a blank form

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[ExportJob]:
        # Like the job pages: an operator never sees a killed worker's job as running.
        reap_stale_jobs()
        return ExportJob.objects.visible_to(request.user).select_related("user")

    @admin.display(description="progress page")
    def page_link(self, job: ExportJob) -> str:
        return format_html('<a href="{}">{}</a>', reverse("export-job", args=[job.pk]), "open")

    @admin.action(description="Cancel the selected exports", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: models.QuerySet[ExportJob]) -> None:
        cancel_jobs(self, request, queryset)


@admin.action(description="Cancel the selected jobs", permissions=["change"])
def cancel_jobs(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: models.QuerySet[Any]
) -> None:
    """Any table's jobs: the same guarded update as the pages' Cancel button."""
    table = next(table for table in TABLES if table.model is model_admin.model)
    active = queryset.filter(status__in=ACTIVE_STATUSES)
    cancelled = sum(cancel(job, table) for job in active)
    model_admin.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)


@admin.action(description="Retry the selected jobs", permissions=["change"])
def retry_jobs(
    model_admin: admin.ModelAdmin[Job], request: HttpRequest, queryset: models.QuerySet[Job]
) -> None:
    retried = [retry(job, user=request.user) for job in queryset.exclude(status__in=Job.ACTIVE)]
    ids = ", ".join(f"#{job.pk}" for job in retried) or "none (active jobs are not retried)"
    model_admin.message_user(request, f"Retried as {ids}.", messages.SUCCESS)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = [
        "id",
        "kind",
        "user",
        "status",
        "step",
        "done",
        "total",
        "unit",
        "retry_of",
        "created_at",
        "finished_at",
        "page_link",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["kind", "user__username", "error", "result_summary"]
    list_select_related = ["user"]
    actions = [cancel_jobs, retry_jobs]
    readonly_fields = [field.name for field in Job._meta.fields] + ["page_link"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs come from their tasks (tracking.start), never from a blank form

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Job]:
        reap_all()
        return Job.objects.visible_to(request.user).select_related("user", "retry_of")

    @admin.display(description="progress page")
    def page_link(self, job: Job) -> str:
        return format_html('<a href="{}">{}</a>', reverse("job", args=[job.pk]), "open")
