"""The background export task, run by ``manage.py db_worker`` (django-tasks-db).

``run_export_job(job_id)`` is enqueued (after the request's transaction
commits) by the admin action and runs in the worker process, never in the
request. It writes exactly the bytes of the streamed and CLI exports of the
same query: the same ``iter_export`` producer, the same encoders.

The job's rows are rebuilt here from what the admin action stored, a
``streams.exports.job_query.JobQuery``: the keys the user ticked, or for
"select all N" the changelist's filters and search, which
``streams.exports.changelist`` replays through the ModelAdmin for the job's
user, so the export holds exactly the rows the user saw, however many
millions, and the request stored only a few bytes.

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

from django.contrib.auth import get_permission_codename, get_user_model
from django.db import models, transaction
from django.tasks import task
from django.utils import timezone

from streams import conf
from streams.exports.allow_list import get_exportable
from streams.exports.formats import ExportFormat
from streams.exports.job_query import JobQuery
from streams.exports.producer import iter_export
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
    stored = JobQuery.from_json(job.query)
    form = ExportQueryForm(exportable, stored.export_params())
    if not form.is_valid():
        raise ValueError("invalid export query: " + form.error_text().strip())
    export_query = form.export_query()
    return export_query.apply(stored.rows(user, exportable.model)), export_query.fields


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


def enqueue_on_commit(job: ExportJob) -> None:
    """Enqueue ``job``'s task once the transaction that created it commits (none on rollback)."""

    def enqueue() -> None:
        result = run_export_job.enqueue(job.pk)
        ExportJob.objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(enqueue)


def retry_export(job: ExportJob, user: Any = None) -> ExportJob:
    """The same export again (model, stored query with its fields, format) as a new job.

    Linked to ``job`` (``retry_of``), as a tracked job's retry is; the new
    job's page links back to the one it retries. The rows are
    those the query selects when the new job runs, so a retry of a filtered
    changelist exports today's matches. ``user`` (default: the old job's)
    owns the new job; the worker checks their permission as for any export.
    """
    new = ExportJob.objects.create(
        user=user if getattr(user, "pk", None) else job.user,
        model_label=job.model_label,
        query=job.query,
        format=job.format,
        retry_of=job,
    )
    enqueue_on_commit(new)
    return new
