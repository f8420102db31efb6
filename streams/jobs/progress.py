"""Export progress: published by the worker, fanned out by each server process.

Worker side (``ProgressReporter``): after each chunk the task reports rows
and bytes; at most every ``STREAMBOARD_EXPORT_PROGRESS_SECONDS`` (0.1 s by
default: the row is never more than that behind) it saves them on the job
row with a guarded ``UPDATE ... WHERE status='running'`` that also refreshes
``heartbeat_at``. An update matching no row means the job was cancelled (or
reaped) meanwhile: the reporter raises ``JobStopped`` and the task stops,
so a cancel takes effect within one progress interval plus one chunk.
The saved state is then published on the channel layer groups
``export-job-<id>``, ``export-user-<user id>`` and ``export-jobs`` (for
superusers).

Server side (``subscribe``): one ``ProgressHub`` per scope (one job, one
user's jobs, or all jobs) per server process, however many browser tabs
watch it. Each subscriber holds only the latest state per job (a newer state
replaces an unsent older one: bounded by the number of jobs, and nothing a
bar needs is lost). The hub learns about changes in one of two ways:

* **A cross-process channel layer** (Redis): the worker's messages arrive in
  the hub's channel; the job rows are also read every few seconds to catch
  jobs created or finished while a message was lost.
* **The in-memory channel layer** (the embedded default) does not cross
  processes, so the worker's messages never reach the server: the hub then
  reads the job rows every ``STREAMBOARD_EXPORT_POLL_SECONDS`` (5 times a
  second by default, so a bar moves at least 4 times a second): one short
  query per scope per process, no connection held in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from streams import conf
from streams.jobs.models import ExportJob, reap_stale_jobs, stale_cutoff

ALL_JOBS_GROUP = "export-jobs"
logger = logging.getLogger(__name__)
# With a cross-process layer, rows are still read this often (new jobs, lost messages).
LAYER_FALLBACK_POLL_SECONDS = 2.0


def job_group(job_id: int) -> str:
    return f"export-job-{job_id}"


def user_group(user_id: int) -> str:
    return f"export-user-{user_id}"


def layer_crosses_processes() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


class JobStopped(Exception):
    """The job is no longer running (cancelled or reaped): stop and clean up."""


class ProgressReporter:
    """The worker's side: throttled saves with a heartbeat, cancel detection, publishing."""

    def __init__(self, job: ExportJob, clock: Callable[[], float] = time.monotonic) -> None:
        self.job = job
        self.clock = clock
        self.interval = conf.export_progress_seconds()
        self.saved_at = clock()

    def update(self, rows: int, written: int) -> None:
        self.job.rows_done += rows
        self.job.bytes_written += written
        if self.clock() - self.saved_at >= self.interval:
            self.save()

    def save(self) -> None:
        """Save progress and heartbeat; raise ``JobStopped`` if the job stopped running."""
        self.saved_at = self.clock()
        now = timezone.now()
        updated = ExportJob.objects.filter(pk=self.job.pk, status=ExportJob.Status.RUNNING).update(
            rows_done=self.job.rows_done,
            bytes_written=self.job.bytes_written,
            rows_total=self.job.rows_total,
            heartbeat_at=now,
        )
        if not updated:
            raise JobStopped(self.job.pk)
        self.job.heartbeat_at = now
        self.publish()

    def publish(self) -> None:
        publish(self.job)


def publish(job: ExportJob) -> None:
    """Send the job's state to every server through the channel layer (if it crosses)."""
    if not layer_crosses_processes():
        return
    message = {"type": "export.progress", "job": _serialize(job)}
    groups = (job_group(job.pk), user_group(job.user_id), ALL_JOBS_GROUP)
    _LayerPublisher.get().send(job.pk, groups, message)


class _LayerPublisher:
    """Publishes from a sync worker without slowing it: one event loop in a thread.

    ``async_to_sync`` per message would build a new event loop (and a new
    Redis connection) every time, costing the export tens of milliseconds per
    progress save. Here the worker only hands over the latest state per job;
    a long-lived loop sends it, and a newer state replaces one not yet sent.
    """

    instance: _LayerPublisher | None = None
    instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="export-progress-publisher", daemon=True
        )
        self.thread.start()
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[tuple[str, ...], dict[str, Any]]] = {}
        self.busy = False

    @classmethod
    def get(cls) -> _LayerPublisher:
        with cls.instance_lock:
            if cls.instance is None:
                cls.instance = cls()
            return cls.instance

    def send(self, job_id: int, groups: tuple[str, ...], message: dict[str, Any]) -> None:
        with self.lock:
            self.pending[job_id] = (groups, message)
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
                    logger.exception("could not publish export progress to %s", group)


_FIELDS = (
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
)
_TIMES = ("created_at", "started_at", "finished_at", "heartbeat_at")


def _serialize(job: ExportJob) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(job, name) for name in _FIELDS}
    for name in _TIMES:
        value = getattr(job, name)
        data[name] = value.isoformat() if value else None
    return data


def _deserialize(data: dict[str, Any]) -> ExportJob:
    values = {name: data[name] for name in _FIELDS}
    for name in _TIMES:
        values[name] = datetime.fromisoformat(data[name]) if data.get(name) else None
    return ExportJob(**values)


@dataclass(eq=False)
class Subscriber:
    """One SSE client: the latest unsent state per job, and a wake-up."""

    pending: dict[int, ExportJob] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, job: ExportJob) -> None:
        self.pending[job.pk] = job
        self.ready.set()

    async def take(self) -> list[ExportJob]:
        await self.ready.wait()
        self.ready.clear()
        jobs = sorted(self.pending.values(), key=lambda job: job.pk)
        self.pending.clear()
        return jobs


@dataclass(frozen=True)
class Scope:
    """Which jobs a hub watches: one job, one user's, or all (a superuser's list)."""

    job_id: int | None = None
    user_id: int | None = None

    @property
    def key(self) -> str:
        if self.job_id is not None:
            return job_group(self.job_id)
        if self.user_id is not None:
            return user_group(self.user_id)
        return ALL_JOBS_GROUP

    def load(self) -> list[ExportJob]:
        """The scope's jobs; a stale running one among them is reaped first.

        This runs several times a second while a page watches: the rows just
        read tell whether reaping is needed, instead of a reaper query each time.
        """
        jobs = ExportJob.objects.all()
        if self.job_id is not None:
            jobs = jobs.filter(pk=self.job_id)
        elif self.user_id is not None:
            jobs = jobs.filter(user_id=self.user_id)
        jobs = jobs.order_by("-pk")[:200]
        loaded = list(jobs)
        cutoff = stale_cutoff()
        if any(
            job.status == ExportJob.Status.RUNNING
            and job.heartbeat_at is not None
            and job.heartbeat_at < cutoff
            for job in loaded
        ):
            reap_stale_jobs()
            loaded = list(jobs.all())  # a fresh read, not the cached rows
        return loaded


class ProgressHub:
    """One per scope per server process: reads or receives job states, fans them out."""

    hubs: dict[str, ProgressHub] = {}

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.subscribers: set[Subscriber] = set()
        self.versions: dict[int, str] = {}
        self.latest: dict[int, ExportJob] = {}
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def for_scope(cls, scope: Scope) -> ProgressHub:
        hub = cls.hubs.get(scope.key)
        if hub is None:
            hub = cls.hubs[scope.key] = cls(scope)
        return hub

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        for job in self.latest.values():
            subscriber.offer(job)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def remove(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            if self.task is not None:
                self.task.cancel()
            self.hubs.pop(self.scope.key, None)

    def accept(self, job: ExportJob) -> None:
        version = job.version()
        if self.versions.get(job.pk) == version:
            return
        self.versions[job.pk] = version
        self.latest[job.pk] = job
        for subscriber in self.subscribers:
            subscriber.offer(job)

    def interval(self, jobs: list[ExportJob], layer: bool) -> float:
        """Read rows 5 times a second while something may change, rarely otherwise.

        A finished job watched on its own page cannot change any more, and with
        a cross-process layer the worker's messages carry the changes.
        """
        settled = self.scope.job_id is not None and not any(job.is_active for job in jobs)
        if layer or settled:
            return LAYER_FALLBACK_POLL_SECONDS
        return conf.export_poll_seconds()

    async def run(self) -> None:
        load = database_sync_to_async(self.scope.load)
        layer = get_channel_layer() if layer_crosses_processes() else None
        channel = None
        try:
            if layer is not None:
                channel = await layer.new_channel()
                await layer.group_add(self.scope.key, channel)
            while self.subscribers:
                try:
                    jobs = await load()
                except Exception:
                    # A locked or unreachable database: keep the streams open, retry.
                    logger.exception("could not read export jobs for %s", self.scope.key)
                    jobs = []
                for job in reversed(jobs):
                    self.accept(job)
                interval = self.interval(jobs, layer is not None)
                deadline = time.monotonic() + interval
                while layer is not None and channel is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        message = await asyncio.wait_for(layer.receive(channel), remaining)
                    except TimeoutError:
                        break
                    if message.get("type") == "export.progress":
                        self.accept(_deserialize(message["job"]))
                if layer is None:
                    await asyncio.sleep(interval)
        finally:
            if layer is not None and channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(self.scope.key, channel)


async def subscribe(scope: Scope) -> AsyncIterator[list[ExportJob]]:
    """Batches of changed job states for ``scope``: the current ones first, then changes."""
    hub = ProgressHub.for_scope(scope)
    subscriber = Subscriber()
    hub.add(subscriber)
    try:
        while True:
            yield await subscriber.take()
    finally:
        hub.remove(subscriber)
