"""The admin of tracked jobs: read-only lists, since jobs come from their tasks."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from streams.jobs.models import ExportJob, reap_stale_jobs


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
