"""Job progress, the server's side: one hub per scope per process, fanned out to streams.

One ``ProgressHub`` per scope (one job, one user's jobs, or all jobs of a
``JobTable``) per server process, however many browser tabs watch it. Each
subscriber holds only the latest state per job (a newer state replaces an
unsent older one: bounded by the number of jobs, and nothing a bar needs is
lost). The hub learns about changes in one of two ways:

* **A cross-process channel layer** (Redis): the worker's messages arrive in
  the hub's channel; the job rows are also read every few seconds to catch
  jobs created or finished while a message was lost. While the layer fails
  (Redis down or restarting) the hub reads the rows at the in-memory rate
  below and rejoins its group each round, so no stream stalls.
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
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from streams import conf
from streams.jobs.progress import MESSAGE_TYPE, layer_crosses_processes
from streams.jobs.tables import JobTable

logger = logging.getLogger(__name__)
# With a cross-process layer, rows are still read this often (new jobs, lost messages).
LAYER_FALLBACK_POLL_SECONDS = 2.0
# A hub's list is the newest jobs of its scope, at most this many.
SCOPE_LIMIT = 200


@dataclass(eq=False)
class Subscriber:
    """One SSE client: the latest unsent state per job, and a wake-up."""

    pending: dict[Any, Any] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, job: Any) -> None:
        self.pending[job.pk] = job
        self.ready.set()

    async def take(self) -> list[Any]:
        await self.ready.wait()
        self.ready.clear()
        jobs = sorted(self.pending.values(), key=lambda job: job.pk)
        self.pending.clear()
        return jobs


@dataclass(frozen=True)
class Scope:
    """Which jobs of a table a hub watches: one job, one user's, or all (a superuser's)."""

    table: JobTable
    job_id: int | None = None
    user_id: int | None = None

    @property
    def key(self) -> str:
        if self.job_id is not None:
            return self.table.job_group(self.job_id)
        if self.user_id is not None:
            return self.table.user_group(self.user_id)
        return self.table.all_group

    def load(self) -> list[Any]:
        """The scope's jobs; a stale running one among them is reaped first.

        This runs several times a second while a page watches: the rows just
        read tell whether reaping is needed, instead of a reaper query each time.
        """
        jobs = self.table.rows()
        if self.job_id is not None:
            jobs = jobs.filter(pk=self.job_id)
        elif self.user_id is not None:
            jobs = jobs.filter(user_id=self.user_id)
        jobs = jobs.order_by("-pk")[:SCOPE_LIMIT]
        loaded = list(jobs)
        cutoff = timezone.now() - timedelta(seconds=conf.export_stale_seconds())
        if any(
            job.status == "running" and job.heartbeat_at is not None and job.heartbeat_at < cutoff
            for job in loaded
        ):
            self.table.reap()
            loaded = list(jobs.all())  # a fresh read, not the cached rows
        return loaded


class ProgressHub:
    """One per scope per server process: reads or receives job states, fans them out."""

    hubs: dict[str, ProgressHub] = {}

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.subscribers: set[Subscriber] = set()
        self.versions: dict[Any, str] = {}
        self.latest: dict[Any, Any] = {}
        self.task: asyncio.Task[None] | None = None
        self.layer_down = False

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

    def accept(self, job: Any) -> None:
        version = job.version()
        if self.versions.get(job.pk) == version:
            return
        self.versions[job.pk] = version
        self.latest[job.pk] = job
        for subscriber in self.subscribers:
            subscriber.offer(job)

    def interval(self, jobs: list[Any], layer: bool) -> float:
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
            while self.subscribers:
                if layer is not None and channel is None:
                    channel = await self.join(layer)
                try:
                    jobs = await load()
                except Exception:
                    # A locked or unreachable database: keep the streams open, retry.
                    logger.exception("could not read jobs for %s", self.scope.key)
                    jobs = []
                for job in reversed(jobs):
                    self.accept(job)
                interval = self.interval(jobs, channel is not None)
                if layer is None or channel is None:
                    await asyncio.sleep(interval)
                    continue
                try:
                    await self.receive(layer, channel, time.monotonic() + interval)
                except Exception:
                    logger.warning(
                        "the channel layer failed for %s: reading job rows until it is back",
                        self.scope.key,
                        exc_info=True,
                    )
                    await self.leave(layer, channel)
                    channel = None
        finally:
            if layer is not None and channel is not None:
                await self.leave(layer, channel)

    async def join(self, layer: Any) -> str | None:
        """A channel in the scope's group, or None while the layer (Redis) is unreachable.

        Without one the hub reads the rows at the in-memory layer's rate, so a
        bar keeps moving through a Redis restart; each round tries again.
        """
        try:
            channel: str = await layer.new_channel()
            await layer.group_add(self.scope.key, channel)
        except Exception as exc:
            if not self.layer_down:
                logger.warning("channel layer unreachable for %s (%s)", self.scope.key, exc)
            self.layer_down = True
            return None
        self.layer_down = False
        return channel

    async def leave(self, layer: Any, channel: str) -> None:
        with contextlib.suppress(Exception):
            await layer.group_discard(self.scope.key, channel)

    async def receive(self, layer: Any, channel: str, deadline: float) -> None:
        """Accept the worker's messages until ``deadline``."""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(layer.receive(channel), remaining)
            except TimeoutError:
                return
            if message.get("type") == MESSAGE_TYPE:
                self.accept(self.scope.table.deserialize(message["job"]))


async def subscribe(scope: Scope) -> AsyncIterator[list[Any]]:
    """Batches of changed job states for ``scope``: the current ones first, then changes."""
    hub = ProgressHub.for_scope(scope)
    subscriber = Subscriber()
    hub.add(subscriber)
    try:
        while True:
            yield await subscriber.take()
    finally:
        hub.remove(subscriber)
