"""Progress, cancel and retry for any ``django.tasks`` task: ``@tracked`` and ``start``.

A task author writes::

    from django.tasks import task
    from streams.jobs.tracking import Progress, start, tracked

    @task()
    @tracked(kind="reports.build", unit="customers")
    def build_report(progress: Progress, region: str) -> str:
        customers = Customer.objects.filter(region=region)
        progress.total = customers.count()
        progress.step("reading")
        for customer in customers.iterator():
            summarise(customer)
            progress.advance()  # raises JobStopped if the user cancelled: the job ends there
        progress.result(url=f"/reports/{region}/", summary=f"{progress.done} customers")
        return "done"

    job = start(build_report, "emea", user=request.user)  # a Job row, enqueued on commit

``@tracked`` (under ``@task``) turns the function into a task whose first
argument is the id of a ``streams.Job`` row: ``start`` creates that row
(kind, task path, arguments, user) and enqueues the task once the
transaction commits. In the worker the wrapper claims the row (``queued`` →
``running``, guarded: a job cancelled while queued never runs), hands the
function a ``Progress``, and ends the row: succeeded with its result, failed
with the error (re-raised, so the task backend records the failure too), or
left as whoever stopped it set it (cancel, reaper). SIGTERM puts the job back
in the queue. ``retry`` enqueues the same task with the same arguments as a
new job linked to the old one (``retry_of``).

``Progress`` saves at most every ``STREAMBOARD_EXPORT_PROGRESS_SECONDS`` with
a guarded ``UPDATE ... WHERE status='running'`` (a cancel always wins), and
publishes the state like exports do; a call that does not save costs a clock
read and a subtraction (``bench/progress_cost.py``: ~0.1-0.2 µs per call).
While the function runs, the worker's liveness timer keeps the job's
heartbeat fresh, so a long step without progress calls is not reaped.
Cancel is cooperative: ``advance``/``step`` raise ``JobStopped`` at their
next save once the job was cancelled; ``cancelled`` asks without raising and
``check()`` raises, for a task that wants to clean up first.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from django.db import transaction
from django.tasks import Task
from django.utils import timezone
from django.utils.module_loading import import_string

from streams import conf
from streams.jobs.liveness import running_here
from streams.jobs.models import ACTIVE_STATUSES, TRACKED_JOBS, Job, JobStatus
from streams.jobs.progress import JobStopped, ProgressReporter, publish
from streams.jobs.tables import JobTable
from streams.jobs.worker import WorkerStopping, finish, requeue, stop_on_shutdown_signal

__all__ = ["JobStopped", "Progress", "cancel", "retry", "start", "tracked"]

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger(__name__)
SAVED_FIELDS = ("done", "total", "unit", "step", "steps")
SUMMARY_LENGTH = 500


class Progress:
    """A running job's reporter: what the task tells, saved and published at a bounded rate."""

    def __init__(
        self,
        job: Job,
        stopping: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self._stopping = stopping or threading.Event()
        self._clock = clock
        self._reporter = ProgressReporter(job, TRACKED_JOBS, SAVED_FIELDS, clock)
        # Read on the hot path: local attributes, no property or method call.
        self._interval = conf.export_progress_seconds()
        self._stopped = False
        self.result_url = ""
        self.result_summary = ""

    # The hot path: one addition, one clock read, one comparison.
    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done; saves (and may raise ``JobStopped``) when due."""
        self.job.done += n
        if self._clock() - self._reporter.saved_at >= self._interval:
            self._save()

    @property
    def done(self) -> int:
        return self.job.done

    @done.setter
    def done(self, value: int) -> None:
        self.job.done = value
        self._tick()

    @property
    def total(self) -> int | None:
        return self.job.total

    @total.setter
    def total(self, value: int | None) -> None:
        self.job.total = value
        self._tick()

    @property
    def unit(self) -> str:
        return self.job.unit

    @unit.setter
    def unit(self, value: str) -> None:
        self.job.unit = value
        self._tick()

    def step(self, name: str) -> None:
        """Name the current step ("reading", "writing"); the job's page lists the steps."""
        if name != self.job.step:
            self.job.step = name
            self.job.steps = [
                *self.job.steps,
                {"name": name, "at": timezone.now().isoformat(), "done": self.job.done},
            ]
        self._tick()

    def result(self, url: str = "", summary: str = "") -> None:
        """What the job's page offers when it succeeded: a link and/or a short summary."""
        self.result_url = url
        self.result_summary = summary[:SUMMARY_LENGTH]

    @property
    def cancelled(self) -> bool:
        """Whether the job stopped running (cancelled or reaped); never raises."""
        if not self._stopped and self._due():
            try:
                self._reporter.save()
            except JobStopped:
                self._stopped = True
        return self._stopped

    def check(self) -> None:
        """Raise ``JobStopped`` if the job was cancelled (or ``WorkerStopping`` on shutdown)."""
        if self.cancelled:
            raise JobStopped(self.job.pk)
        if self._stopping.is_set():
            raise WorkerStopping(self.job.pk)

    def save(self) -> None:
        """Save now (the wrapper does at the end); raises ``JobStopped`` if stopped."""
        self._save()

    def _due(self) -> bool:
        return self._clock() - self._reporter.saved_at >= self._interval

    def _tick(self) -> None:
        if self._due():
            self._save()

    def _save(self) -> None:
        if self._stopping.is_set():
            raise WorkerStopping(self.job.pk)
        try:
            self._reporter.save()
        except JobStopped:
            self._stopped = True
            raise


def tracked(
    *, kind: str | None = None, unit: str = "items"
) -> Callable[[Callable[Concatenate[Progress, P], R]], Callable[Concatenate[int, P], str]]:
    """Make a task function report progress; put it under ``@task()``.

    The decorated function takes a ``Progress`` first; the task it becomes
    takes the ``Job`` id first (``start`` passes it) and returns the job's
    final status. ``kind`` names the job on the pages (default: the
    function's name); ``unit`` is what ``done``/``total`` count.
    """

    def decorate(func: Callable[Concatenate[Progress, P], R]) -> Callable[Concatenate[int, P], str]:
        def run(job_id: int, /, *args: P.args, **kwargs: P.kwargs) -> str:
            return _run(func, job_id, args, kwargs)

        # The task's path (module and qualified name) is the function's own.
        functools.update_wrapper(run, func)

        run.tracked_kind = kind or func.__name__  # type: ignore[attr-defined]
        run.tracked_unit = unit  # type: ignore[attr-defined]
        return run

    return decorate


def _run(
    func: Callable[..., Any], job_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return "deleted"
    if not claimed:
        return str(job.status)  # cancelled while queued, or another worker has it
    publish(TRACKED_JOBS, job)
    running_here.add(job.pk)  # the worker's liveness timer beats for it meanwhile
    try:
        with stop_on_shutdown_signal() as stopping:
            progress = Progress(job, stopping)
            value = func(progress, *args, **kwargs)
            progress.save()  # the last progress; raises JobStopped if cancelled meanwhile
    except WorkerStopping:
        requeue(
            TRACKED_JOBS,
            job,
            {"done": 0, "step": "", "steps": []},
            lambda: _enqueue(job),
        )
    except JobStopped:
        pass  # whoever stopped it (cancel, reaper, delete) set the status
    except Exception as error:
        logger.exception("%s job %s failed", job.kind, job_id)
        finish(
            TRACKED_JOBS,
            job,
            JobStatus.FAILED,
            error=f"{type(error).__name__}: {error}",
            **{name: getattr(job, name) for name in SAVED_FIELDS},
        )
        raise
    else:
        summary = progress.result_summary or (value if isinstance(value, str) else "")
        finish(
            TRACKED_JOBS,
            job,
            JobStatus.SUCCEEDED,
            result_url=progress.result_url,
            result_summary=summary[:SUMMARY_LENGTH],
            **{name: getattr(job, name) for name in SAVED_FIELDS},
        )
    finally:
        running_here.discard(job.pk)
    status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
    return str(status or "deleted")


def _task_of(job: Job) -> Task[Any, Any]:
    task = import_string(job.task_path)
    if not isinstance(task, Task) or not hasattr(task.func, "tracked_kind"):
        raise TypeError(f"{job.task_path} is not a @tracked task.")
    return task


def _enqueue(job: Job) -> str:
    return str(_task_of(job).enqueue(job.pk, *job.args, **job.kwargs).id)


def start(task: Task[Any, Any], *args: Any, user: Any = None, **kwargs: Any) -> Job:
    """Create a ``Job`` for ``task(*args, **kwargs)`` and enqueue it once committed."""
    kind: str | None = getattr(task.func, "tracked_kind", None)
    if kind is None:
        raise TypeError(f"{task.module_path} is not a @tracked task (put @tracked under @task).")
    job = Job.objects.create(
        kind=kind,
        task_path=task.module_path,
        args=list(args),
        kwargs=kwargs,
        unit=getattr(task.func, "tracked_unit", "items"),
        user=user if getattr(user, "pk", None) else None,
    )
    _enqueue_on_commit(job)
    return job


def retry(job: Job, user: Any = None) -> Job:
    """The same task with the same arguments, as a new job linked to ``job``."""
    _task_of(job)  # refuse before creating anything
    new = Job.objects.create(
        kind=job.kind,
        task_path=job.task_path,
        args=job.args,
        kwargs=job.kwargs,
        unit=job.unit,
        user=user if getattr(user, "pk", None) else job.user,
        retry_of=job,
    )
    _enqueue_on_commit(new)
    return new


def cancel(job: Any, table: JobTable = TRACKED_JOBS) -> bool:
    """Cancel a queued or running job of ``table`` (guarded); its worker stops at its next save."""
    cancelled = (
        table.rows()
        .filter(pk=job.pk, status__in=ACTIVE_STATUSES)
        .update(status=JobStatus.CANCELLED, finished_at=timezone.now())
    )
    job.refresh_from_db()
    if cancelled:
        publish(table, job)
    return bool(cancelled)


def _enqueue_on_commit(job: Job) -> None:
    def enqueue() -> None:
        Job.objects.filter(pk=job.pk).update(task_id=_enqueue(job))

    transaction.on_commit(enqueue)
