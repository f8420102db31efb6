"""Job progress, the worker's side: throttled guarded saves, cancel detection, publishing.

A task changes its job's progress fields in memory as often as it likes and
calls ``ProgressReporter.tick()``; at most every
``STREAMBOARD_EXPORT_PROGRESS_SECONDS`` (0.1 s by default: the row is never
more than that behind) the reporter saves them with a guarded
``UPDATE ... WHERE status='running'`` that also refreshes ``heartbeat_at``.
An update matching no row means the job was cancelled (or reaped, or
deleted) meanwhile: the reporter raises ``JobStopped`` and the task stops, so
a cancel always wins and takes effect within one progress interval plus one
unit of work. A tick that does not save is one clock read and a subtraction.

The saved state is then published on the channel-layer groups of the job's
``JobTable`` (the job's, its user's, and all jobs' for superusers), when the
layer crosses processes; the server-side hubs (``streams.jobs.hub``) read
the rows otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from streams import conf
from streams.jobs.tables import JobTable, TrackedRow

logger = logging.getLogger(__name__)
MESSAGE_TYPE = "job.progress"


def layer_crosses_processes() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


class JobStopped(Exception):
    """The job is no longer running (cancelled, reaped or deleted): stop and clean up."""


class ProgressReporter:
    """Saves ``fields`` of a running ``job`` at a bounded rate, with a heartbeat."""

    def __init__(
        self,
        job: Any,
        table: JobTable,
        fields: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.table = table
        self.fields = tuple(fields)
        self.clock = clock
        self.interval = conf.export_progress_seconds()
        self.saved_at = clock()

    def tick(self) -> None:
        """Save if the last save is at least one interval old (cheap otherwise)."""
        if self.clock() - self.saved_at >= self.interval:
            self.save()

    def save(self) -> None:
        """Save progress and heartbeat; raise ``JobStopped`` if the job stopped running."""
        self.saved_at = self.clock()
        now = timezone.now()
        values = {name: getattr(self.job, name) for name in self.fields}
        updated = (
            self.table.rows()
            .filter(pk=self.job.pk, status="running")
            .update(heartbeat_at=now, **values)
        )
        if not updated:
            raise JobStopped(self.job.pk)
        self.job.heartbeat_at = now
        publish(self.table, self.job)


def publish(table: JobTable, job: TrackedRow) -> None:
    """Send the job's state to every server through the channel layer (if it crosses)."""
    if not layer_crosses_processes():
        return
    message = {"type": MESSAGE_TYPE, "job": table.serialize(job)}
    _LayerPublisher.get().send((table.group, job.pk), table.groups(job), message)


class _LayerPublisher:
    """Publishes from a sync worker without slowing it: one event loop in a thread.

    ``async_to_sync`` per message would build a new event loop (and a new
    Redis connection) every time, costing the task tens of milliseconds per
    progress save. Here the worker only hands over the latest state per job;
    a long-lived loop sends it, and a newer state replaces one not yet sent.
    """

    instance: _LayerPublisher | None = None
    instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="job-progress-publisher", daemon=True
        )
        self.thread.start()
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, Any], tuple[tuple[str, ...], dict[str, Any]]] = {}
        self.busy = False

    @classmethod
    def get(cls) -> _LayerPublisher:
        with cls.instance_lock:
            if cls.instance is None:
                cls.instance = cls()
            return cls.instance

    def send(self, key: tuple[str, Any], groups: tuple[str, ...], message: dict[str, Any]) -> None:
        with self.lock:
            self.pending[key] = (groups, message)
            if self.busy:
                return
            self.busy = True
        asyncio.run_coroutine_threadsafe(self.drain(), self.loop)

    async def drain(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            with self.lock:
                if not self.pending:
                    self.busy = False
                    return
                _, (groups, message) = self.pending.popitem()
            for group in groups:
                try:
                    await layer.group_send(group, message)
                except Exception:
                    logger.exception("could not publish job progress to %s", group)
