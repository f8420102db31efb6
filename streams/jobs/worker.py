"""What every tracked task does in the worker, whatever it computes.

* ``finish``: the guarded end of a running job (``UPDATE ... WHERE
  status='running'``): a cancel or the reaper that got there first wins, and
  the task learns it from the return value.
* ``stop_on_shutdown_signal`` / ``WorkerStopping``: notice SIGTERM or Ctrl-C
  while a job runs, so the job is put back in the queue (``requeue``) at
  once instead of outliving the supervisor's patience.
* ``requeue``: a running job back to ``queued``, its progress reset, and its
  task enqueued again; the next worker starts it from scratch.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.utils import timezone

from streams.jobs.progress import publish
from streams.jobs.tables import JobTable


def finish(table: JobTable, job: Any, status: str, **fields: Any) -> bool:
    """Mark a running job ``status`` (with ``fields``); False if it had stopped running."""
    now = timezone.now()
    updated = (
        table.rows()
        .filter(pk=job.pk, status="running")
        .update(status=status, finished_at=now, heartbeat_at=now, **fields)
    )
    if updated:
        job.refresh_from_db()
        publish(table, job)
    return bool(updated)


class WorkerStopping(Exception):
    """The worker was asked to shut down (SIGTERM, Ctrl-C) in the middle of a job."""


@contextmanager
def stop_on_shutdown_signal() -> Iterator[threading.Event]:
    """Notice a shutdown request while a job runs, without changing the worker's own handling.

    ``db_worker`` handles the first SIGTERM/SIGINT by finishing the current
    task before exiting; a job of millions of rows would then outlive the
    supervisor's patience and be SIGKILLed. Here the signal also sets an
    event the task's loop checks, so the job is put back in the queue at once
    (and the worker's handler still runs).
    """
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping  # signal handlers can only be installed in the main thread
        return
    signals = [signal.SIGTERM, signal.SIGINT]
    previous = {signum: signal.getsignal(signum) for signum in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        chained = previous.get(signal.Signals(signum))
        if callable(chained):
            chained(signum, frame)

    for signum in signals:
        signal.signal(signum, handler)
    try:
        yield stopping
    finally:
        for signum, old in previous.items():
            if old is not None:  # None: a handler not installed from Python
                signal.signal(signum, old)


def requeue(
    table: JobTable, job: Any, reset: Mapping[str, Any], enqueue: Callable[[], str]
) -> bool:
    """Put an interrupted running job back in the queue with ``reset`` progress.

    ``enqueue`` enqueues the job's task again and returns the new task id.
    """
    requeued = (
        table.rows()
        .filter(pk=job.pk, status="running")
        .update(status="queued", started_at=None, heartbeat_at=None, **reset)
    )
    if not requeued:
        return False
    table.rows().filter(pk=job.pk).update(task_id=enqueue())
    job.refresh_from_db()
    publish(table, job)
    return True
