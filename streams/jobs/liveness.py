"""Liveness of tracked jobs without anyone watching: reaping and pruning, on a timer.

* **Reaping**: a running job whose heartbeat is older than
  ``STREAMBOARD_EXPORT_STALE_SECONDS`` lost its worker (SIGKILL, power cut).
  Every ``JobTable``'s reaper marks it failed (guarded), and the task
  backend's own record of its task (django-tasks-db's ``DBTaskResult``,
  left ``RUNNING`` by the dead worker) is failed too, so both agree.
* **Pruning**: finished jobs older than ``STREAMBOARD_JOB_RETENTION_DAYS``
  are deleted (a row's files go with it: its model's ``post_delete`` receivers).
* **The timer** (``LivenessTimer``): a daemon thread every worker runs
  (``manage.py db_worker`` is Streamboard's subclass of django-tasks-db's):
  every ``STREAMBOARD_JOB_REAP_SECONDS`` it refreshes the heartbeat of the
  tracked jobs running in its own process (``running_here``: a long step
  without a progress call is not mistaken for a dead worker, and the beat
  dies with the process), then reaps; it prunes every
  ``STREAMBOARD_JOB_PRUNE_SECONDS``, closing its database connection after
  each round. Pages and streams still reap when they load; the timer makes
  sure a dead worker's job is failed even when no page is open.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import close_old_connections, connection
from django.utils import timezone

from streams import conf
from streams.jobs.models import TABLES, TRACKED_JOBS, JobStatus
from streams.jobs.tables import JobTable

logger = logging.getLogger(__name__)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class RunningHere:
    """The tracked jobs running in this process (the worker's main thread adds and removes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: set[int] = set()

    def add(self, job_id: int) -> None:
        with self.lock:
            self.ids.add(job_id)

    def discard(self, job_id: int) -> None:
        with self.lock:
            self.ids.discard(job_id)

    def snapshot(self) -> list[int]:
        with self.lock:
            return sorted(self.ids)


running_here = RunningHere()


def beat_running_here() -> int:
    """Refresh the heartbeat of this process's running tracked jobs (guarded)."""
    ids = running_here.snapshot()
    if not ids:
        return 0
    return (
        TRACKED_JOBS.rows()
        .filter(pk__in=ids, status=JobStatus.RUNNING)
        .update(heartbeat_at=timezone.now())
    )


def reap_all() -> dict[str, list[int]]:
    """Reap every table; returns the reaped ids per table group."""
    reaped: dict[str, list[int]] = {}
    for table in TABLES:
        ids = table.reap()
        if ids:
            reaped[table.group] = ids
            fail_task_results(table, ids)
    return reaped


def fail_task_results(table: JobTable, job_ids: list[int]) -> int:
    """Fail the backend's record of the reaped jobs' tasks (django-tasks-db only)."""
    if not apps.is_installed("django_tasks_db"):
        return 0
    from django_tasks_db.models import DBTaskResult  # only when that backend is installed

    task_ids = [
        task_id
        for task_id in table.rows().filter(pk__in=job_ids).values_list("task_id", flat=True)
        if task_id
    ]
    return DBTaskResult.objects.filter(id__in=task_ids, status="RUNNING").update(
        status="FAILED",
        finished_at=timezone.now(),
        exception_class_path="streams.jobs.liveness.WorkerLost",
        traceback="The worker stopped responding; Streamboard's reaper failed the job.",
    )


def prune(now: Any = None, retention_days: float | None = None) -> dict[str, int]:
    """Delete finished jobs older than the retention; returns how many per table group."""
    days = conf.job_retention_days() if retention_days is None else retention_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    pruned: dict[str, int] = {}
    for table in TABLES:
        old = table.rows().filter(status__in=FINISHED, finished_at__lt=cutoff)
        count = 0
        # One by one, so each deleted row's signal removes its files.
        for row in old.iterator():
            row.delete()
            count += 1
        pruned[table.group] = count
    return pruned


class LivenessTimer:
    """A worker's background thread: reap on one timer, prune on another, until stopped."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="job-liveness", daemon=True)

    def start(self) -> LivenessTimer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def run(self) -> None:
        reap_every, prune_every = conf.job_reap_seconds(), conf.job_prune_seconds()
        next_prune = time.monotonic()
        while not self.stopped.wait(reap_every):
            try:
                close_old_connections()
                beat_running_here()
                reap_all()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + prune_every
                    prune()
            except Exception:
                logger.exception("job liveness round failed; retrying next round")
            finally:
                connection.close()
