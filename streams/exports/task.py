"""The background export task, run by ``manage.py db_worker`` (django-tasks-db).

``run_export_job(job_id)`` is enqueued (after the request's transaction
commits) by the admin action and runs in the worker process, never in the
request. It writes exactly the bytes of the streamed and CLI exports of the
same query: the same ``iter_export`` producer, the same encoders.

The job's query is rebuilt here, from what the admin action stored:

* ``{"pks": [...]}``: the rows the user ticked;
* ``{"changelist": "<query string>"}``: "select all N" on a filtered,
  searched changelist. The ModelAdmin builds its changelist queryset again
  for the job's user from the stored parameters (``get_changelist_instance``
  on a ``RequestFactory`` request), so the export holds exactly the rows the
  user saw, however many millions, and the request stored only a few bytes.

Steps: reap stale jobs; claim the job (``queued`` → ``running``, a guarded
update: a job cancelled before it started is left alone); count; write
chunks to ``job-<id>.<fmt>.part``, reporting progress (which also detects a
cancel); rename to the final name and mark succeeded in a guarded update. On
cancel or failure the partial file is removed and never offered. A worker
asked to shut down (SIGTERM, Ctrl-C) puts its job back in the queue, and the
next worker starts it from scratch; a worker killed outright (SIGKILL) is
caught by the stale reaper instead (``streams.jobs.models.reap_stale_jobs``).
The generic parts (guarded finish, shutdown signal, requeue) are
``streams.jobs.worker``'s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_permission_codename, get_user_model
from django.db import models
from django.http import QueryDict
from django.tasks import task
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from streams import conf
from streams.exports.producer import ExportFormat, get_exportable, iter_export
from streams.exports.query import ExportQueryForm
from streams.jobs.models import EXPORT_JOBS, ExportJob, reap_stale_jobs
from streams.jobs.progress import JobStopped, ProgressReporter, publish
from streams.jobs.worker import WorkerStopping, finish, requeue, stop_on_shutdown_signal

logger = logging.getLogger(__name__)


def job_queryset(job: ExportJob) -> tuple[models.QuerySet[Any], tuple[str, ...]]:
    """The rows and fields ``job`` exports, rebuilt from its stored query."""
    exportable = get_exportable(job.model_label)
    user = get_user_model()._default_manager.get(pk=job.user_id)
    opts = exportable.model._meta
    may_view = any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )
    if not (user.is_active and user.is_staff and may_view):
        raise PermissionError(f"{user} may not view {job.model_label}.")
    query: dict[str, Any] = job.query or {}
    params = dict(query.get("params") or {})
    form = ExportQueryForm(exportable, params)
    if not form.is_valid():
        raise ValueError("invalid export query: " + form.error_text().strip())
    export_query = form.export_query()
    queryset: models.QuerySet[Any]
    if "changelist" in query:
        queryset = changelist_queryset(user, exportable.model, query["changelist"])
    else:
        queryset = exportable.model._default_manager.all()
        if "pks" in query:
            queryset = queryset.filter(pk__in=query["pks"])
    return export_query.apply(queryset), export_query.fields


def changelist_queryset(user: Any, model: type[models.Model], params: str) -> models.QuerySet[Any]:
    """The changelist rows ``user`` (checked by ``job_queryset``) sees with the stored query."""
    model_admin = admin.site._registry.get(model)
    opts = model._meta
    if model_admin is None:
        raise LookupError(f"{opts.label_lower} has no admin changelist.")
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    request = RequestFactory().get(url, QueryDict(params))
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    return changelist.get_queryset(request)


def changelist_params(query_dict: QueryDict) -> str:
    """The changelist parameters worth keeping (filters, search), as a query string."""
    keep = [(key, value) for key, value in query_dict.lists() if key not in ("p", "o", "_to_field")]
    return urlencode([(key, value) for key, values in keep for value in values])


def execute_job(job_id: int) -> str:
    """Run one export job to its end; returns the final status."""
    reap_stale_jobs()
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    job = ExportJob.objects.get(pk=job_id)
    if not claimed:
        return str(job.status)
    publish(EXPORT_JOBS, job)
    partial = job.partial_path()
    try:
        with stop_on_shutdown_signal() as stopping:
            _write(job, partial, stopping)
    except WorkerStopping:
        partial.unlink(missing_ok=True)
        _requeue(job)
    except JobStopped:
        # Cancelled, reaped or deleted meanwhile: whoever stopped it set the status.
        partial.unlink(missing_ok=True)
    except Exception as error:
        partial.unlink(missing_ok=True)
        logger.exception("export job %s failed", job_id)
        finish(EXPORT_JOBS, job, ExportJob.Status.FAILED, error=f"{type(error).__name__}: {error}")
    status = ExportJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
    return str(status or "deleted")


def _write(job: ExportJob, partial: Path, stopping: threading.Event) -> None:
    """Export to ``partial``, then rename it and mark the job succeeded (guarded)."""
    queryset, fields = job_queryset(job)
    job.rows_total = queryset.count()
    reporter = ProgressReporter(job, EXPORT_JOBS, ("rows_done", "bytes_written", "rows_total"))
    reporter.save()
    partial.parent.mkdir(parents=True, exist_ok=True)
    delay = conf.export_chunk_delay()
    with partial.open("wb") as file:
        for chunk in iter_export(
            queryset,
            fields,
            cast(ExportFormat, job.format),
            chunk_size=conf.export_chunk_size(),
        ):
            file.write(chunk.data)
            job.rows_done += chunk.rows
            job.bytes_written += len(chunk.data)
            reporter.tick()
            if stopping.is_set():
                raise WorkerStopping(job.pk)
            if delay:
                time.sleep(delay)
                reporter.save()
        file.flush()
        os.fsync(file.fileno())
    reporter.save()
    final = conf.export_dir() / job.final_name
    os.replace(partial, final)
    if not finish(
        EXPORT_JOBS,
        job,
        ExportJob.Status.SUCCEEDED,
        rows_done=job.rows_done,
        bytes_written=job.bytes_written,
        file_name=job.final_name,
    ):
        final.unlink(missing_ok=True)


def _requeue(job: ExportJob) -> None:
    """Put an interrupted export back in the queue; the next worker starts it from scratch."""
    requeue(
        EXPORT_JOBS,
        job,
        {"rows_done": 0, "bytes_written": 0},
        lambda: str(run_export_job.enqueue(job.pk).id),
    )


@task()
def run_export_job(job_id: int) -> str:
    """The task the admin action enqueues; the worker runs it."""
    return execute_job(job_id)
