"""Tracked jobs: ``Job`` (any ``@tracked`` task) and ``ExportJob`` (one background export).

``Job`` is the generic row of ``streams.jobs.tracking``: what ran (kind, task
path and arguments, so it can be retried), how far it is (done of total in
its own unit, the current step and the steps so far), and how it ended (a
result link and summary, or an error). ``ExportJob`` keeps the export's own
fields (format, query, bytes, the file) and its own progress fields; both
are ``JobTable`` entries to the progress machinery, so the same hubs, encoders,
reapers and pruning serve them.

The row is the job's single source of truth, shared by the request that
created it, the worker that runs it and every server that shows it:

* **Status changes are guarded updates** (``UPDATE ... WHERE status=...``),
  never read-modify-write: a cancel from a page, the worker finishing and the
  stale reaper can race, and exactly one of them wins. The worker learns
  about a cancel because its next progress update matches no row.
* **The file** is written as ``job-<id>.<format>.part`` in
  ``STREAMBOARD_EXPORT_DIR`` and renamed to ``job-<id>.<format>`` only when
  complete; ``file_name`` is set in the same guarded update that marks the job
  succeeded, so a partial file is never offered.
* **heartbeat_at** is refreshed with every progress save; a running job whose
  heartbeat is older than ``STREAMBOARD_EXPORT_STALE_SECONDS`` lost its worker
  (SIGKILL, power cut) and ``reap_stale_jobs`` marks it failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from streams import conf
from streams.jobs.tables import JobTable, Templates


class ExportJobQuerySet(models.QuerySet["ExportJob"]):
    def visible_to(self, user: Any) -> ExportJobQuerySet:
        """A user sees only their own jobs; a superuser sees all."""
        if getattr(user, "is_superuser", False):
            return self
        pk = getattr(user, "pk", None)
        if pk is None:  # an anonymous user owns no job
            return self.none()
        return self.filter(user_id=pk)


class JobStatus(models.TextChoices):
    """Every tracked job's life: queued → running → one of the three ends."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class ProgressFigures:
    """A job's percent, rate and ETA, from its counts, status and times.

    Mixed into both job tables (``ExportJob`` counts rows, ``Job`` its own
    unit), which name their counts differently: ``progress_counts``.
    """

    status: str
    started_at: datetime | None
    finished_at: datetime | None

    def progress_counts(self) -> tuple[int, int | None]:
        """(done, total); ``total`` ``None`` while unknown."""
        raise NotImplementedError

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        done, total = self.progress_counts()
        if not total:
            return 0
        return min(100, done * 100 // total)

    def elapsed_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def rate(self) -> float | None:
        """Units (rows, for an export) per second since the job started."""
        elapsed = self.elapsed_seconds()
        done, _ = self.progress_counts()
        if not elapsed or not done:
            return None
        return done / elapsed

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        done, total = self.progress_counts()
        if self.status != JobStatus.RUNNING or not rate or total is None:
            return None
        return max(total - done, 0) / rate


class ExportJob(ProgressFigures, models.Model):
    Status = JobStatus

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Format(models.TextChoices):
        NDJSON = "ndjson", "NDJSON"
        CSV = "csv", "CSV"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    model_label = models.CharField(max_length=100, help_text="app_label.model_name")
    query = models.JSONField(
        default=dict,
        help_text="fields, filters, and either selected pks or the admin changelist's "
        "filter and search parameters",
    )
    format = models.CharField(max_length=10, choices=Format, default=Format.NDJSON)
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True)
    bytes_written = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    file_name = models.CharField(
        max_length=200, blank=True, help_text="the finished file in STREAMBOARD_EXPORT_DIR"
    )
    task_id = models.CharField(max_length=64, blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="exportjob_stale_idx")]

    def __str__(self) -> str:
        return f"export #{self.pk} of {self.model_label} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def final_name(self) -> str:
        return f"job-{self.pk}.{self.format}"

    def partial_path(self) -> Path:
        return conf.export_dir() / f"{self.final_name}.part"

    def result_path(self) -> Path | None:
        """The finished file, only for a succeeded job (never a partial one)."""
        if self.status != self.Status.SUCCEEDED or not self.file_name:
            return None
        return conf.export_dir() / self.file_name

    def download_name(self) -> str:
        return f"{self.model_label}-{self.pk}.{self.format}"

    def progress_counts(self) -> tuple[int, int | None]:
        return self.rows_done, self.rows_total

    @property
    def rows_per_second(self) -> float | None:
        return self.rate

    def state(self) -> dict[str, Any]:
        """What ``format=json`` progress events carry."""
        return {
            "id": self.pk,
            "status": self.status,
            "done": self.rows_done,
            "total": self.rows_total,
            "error": self.error,
        }

    def version(self) -> str:
        """Changes whenever what a progress bar shows changes: the SSE event id."""
        return f"{self.pk}.{self.status}.{self.rows_done}.{self.rows_total or 0}"


def stale_cutoff(now: Any = None) -> Any:
    """Running jobs whose heartbeat is older than this have lost their worker."""
    return (now or timezone.now()) - timedelta(seconds=conf.export_stale_seconds())


def reap_stale_jobs(now: Any = None) -> list[int]:
    """Mark running jobs whose worker stopped beating as failed, removing partial files.

    Called when a worker starts a job and when export pages and streams load,
    so a SIGKILLed worker's job is failed a bounded time later (the stale
    threshold plus the next page load or task) instead of "running" for ever.
    """
    now = now or timezone.now()
    cutoff = stale_cutoff(now)
    stale = list(ExportJob.objects.filter(status=ExportJob.Status.RUNNING, heartbeat_at__lt=cutoff))
    reaped = []
    for job in stale:
        updated = ExportJob.objects.filter(
            pk=job.pk, status=ExportJob.Status.RUNNING, heartbeat_at__lt=cutoff
        ).update(
            status=ExportJob.Status.FAILED,
            finished_at=now,
            error=(
                "The export worker stopped responding (no heartbeat for "
                f"{conf.export_stale_seconds():g}s); the partial file was removed."
            ),
        )
        if updated:
            job.partial_path().unlink(missing_ok=True)
            reaped.append(job.pk)
    return reaped


EXPORT_JOBS = JobTable(
    model=ExportJob,
    group="export",
    fields=(
        "id",
        "user_id",
        "model_label",
        "format",
        "status",
        "rows_done",
        "rows_total",
        "bytes_written",
        "error",
        "file_name",
    ),
    times=("created_at", "started_at", "finished_at", "heartbeat_at"),
    reap=reap_stale_jobs,
    templates=Templates(
        job="streams/fragments.html#job", job_list="streams/fragments.html#job_list"
    ),
    listed=Templates(
        job="streams/fragments.html#job", job_list="streams/tracked_jobs.html#export-list"
    ),
    page_url_name="export-job",
    label_field="model_label",
    kind="export",
    title="Exports",
)


@receiver(post_delete, sender=ExportJob)
def remove_job_files(sender: type[ExportJob], instance: ExportJob, **kwargs: Any) -> None:
    """A deleted job takes its file along (a running one's worker removes its partial)."""
    (conf.export_dir() / instance.final_name).unlink(missing_ok=True)


class JobQuerySet(models.QuerySet["Job"]):
    def visible_to(self, user: Any) -> JobQuerySet:
        """A user sees only their own jobs; a superuser sees all."""
        if getattr(user, "is_superuser", False):
            return self
        pk = getattr(user, "pk", None)
        if pk is None:  # an anonymous user owns no job
            return self.none()
        return self.filter(user_id=pk)


class Job(ProgressFigures, models.Model):
    """One run of a ``@tracked`` task (``streams.jobs.tracking``)."""

    Status = JobStatus
    ACTIVE = ACTIVE_STATUSES

    kind = models.CharField(max_length=100, help_text="what the task does, e.g. demo.recompute")
    task_path = models.CharField(max_length=200, help_text="the django.tasks task, for retry")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tracked_jobs",
    )
    status = models.CharField(max_length=10, choices=JobStatus, default=JobStatus.QUEUED)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    unit = models.CharField(max_length=40, default="items")
    step = models.CharField(max_length=100, blank=True)
    steps = models.JSONField(
        default=list, blank=True, help_text='[{"name", "at" (ISO time), "done"}] in order'
    )
    result_url = models.CharField(max_length=500, blank=True)
    result_summary = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="job_stale_idx"),
            models.Index(fields=["status", "finished_at"], name="job_prune_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def progress_counts(self) -> tuple[int, int | None]:
        return self.done, self.total

    def step_timeline(self) -> list[dict[str, Any]]:
        """The steps with their start and, once the next began, their duration in seconds."""
        timeline = []
        starts = [datetime.fromisoformat(step["at"]) for step in self.steps]
        end = self.finished_at or timezone.now()
        for index, step in enumerate(self.steps):
            following = starts[index + 1] if index + 1 < len(starts) else end
            timeline.append(
                {
                    "name": step["name"],
                    "at": starts[index],
                    "seconds": max((following - starts[index]).total_seconds(), 0.0),
                    "current": index + 1 == len(starts) and self.is_active,
                }
            )
        return timeline

    def state(self) -> dict[str, Any]:
        """What ``format=json`` progress events carry."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "step": self.step,
            "result_url": self.result_url,
            "result_summary": self.result_summary,
            "error": self.error,
        }

    def version(self) -> str:
        """Changes whenever what a progress bar shows changes: the SSE event id."""
        return f"{self.pk}.{self.status}.{self.done}.{self.total or 0}.{len(self.steps)}"


def reap_stale_tracked_jobs(now: Any = None) -> list[int]:
    """Mark running tracked jobs whose worker stopped beating as failed (guarded)."""
    now = now or timezone.now()
    cutoff = stale_cutoff(now)
    stale = list(
        Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    reaped = []
    for pk in stale:
        updated = Job.objects.filter(
            pk=pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
        ).update(
            status=JobStatus.FAILED,
            finished_at=now,
            error=(
                "The worker stopped responding (no heartbeat for "
                f"{conf.export_stale_seconds():g}s)."
            ),
        )
        if updated:
            reaped.append(pk)
    return reaped


TRACKED = "streams/tracked_jobs.html"
TRACKED_TEMPLATES = Templates(job=f"{TRACKED}#job", job_list=f"{TRACKED}#job-list")
TRACKED_JOBS = JobTable(
    model=Job,
    group="tracked",
    fields=(
        "id",
        "user_id",
        "kind",
        "status",
        "done",
        "total",
        "unit",
        "step",
        "steps",
        "result_url",
        "result_summary",
        "error",
        "retry_of_id",
        "task_path",
    ),
    times=("created_at", "started_at", "finished_at", "heartbeat_at"),
    reap=reap_stale_tracked_jobs,
    templates=TRACKED_TEMPLATES,
    listed=TRACKED_TEMPLATES,
    page_url_name="job",
    label_field="kind",
)
# A job's own page also lists its steps.
TRACKED_DETAIL_TEMPLATES = Templates(job=f"{TRACKED}#job-detail", job_list=f"{TRACKED}#job-list")
# Every table of tracked jobs: what reaping, pruning, /jobs/ and the notices go through.
TABLES: tuple[JobTable, ...] = (TRACKED_JOBS, EXPORT_JOBS)
