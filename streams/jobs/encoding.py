"""Job states as SSE events: the bar's HTML fragment, or a small JSON object.

Each job's updates are events named ``job-<id>`` whose data is what the page
swaps in with htmx (``html``) or the row's ``state()`` (``json``). Every
event's ``id:`` is the job's state version: a progress bar is a state, so a
reconnecting client is simply sent the current state again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Literal, cast

import orjson
from django.template.loader import render_to_string

from streams.http.sse import Event, Message
from streams.jobs.hub import Scope, subscribe
from streams.jobs.tables import Templates

Format = Literal["html", "json"]
FORMATS: tuple[Format, ...] = ("html", "json")


def render_job(job: Any, fmt: Format, templates: Templates) -> str:
    if fmt == "json":
        return orjson.dumps(job.state()).decode()
    return render_to_string(templates.job, {"job": job}).strip()


async def job_events(
    scope: Scope,
    fmt: Format,
    *,
    templates: Templates,
    listing: bool = False,
    keep: Callable[[Any], bool] | None = None,
    prefix: str = "job",
    list_event: str = "jobs",
    limit: int | None = None,
) -> AsyncIterator[Message]:
    """``job-<id>`` events; with ``listing``, also ``jobs`` when a job appears.

    The list page cannot know about a job created after it loaded, so when
    the stream first sees a job id it sends the whole list (an idempotent
    ``jobs`` swap, each entry wired to its own ``job-<id>`` event) before the
    per-job events. ``keep`` narrows the scope's jobs (a list page's filter);
    ``prefix`` and ``list_event`` rename the events, so two tables' jobs can
    share one connection (``merge``) without their ids colliding; ``limit``
    caps the list (the newest jobs).
    """
    latest: dict[Any, Any] = {}
    async for batch in subscribe(scope):
        # A job once shown stays (a bar filtered by "running" still shows its end).
        jobs = [job for job in batch if keep is None or job.pk in latest or keep(job)]
        if not jobs:
            continue
        new = any(job.pk not in latest for job in jobs)
        latest.update((job.pk, job) for job in jobs)
        if listing and new and fmt == "html":
            ordered = sorted(latest.values(), key=lambda job: job.pk, reverse=True)[:limit]
            html = render_to_string(templates.job_list, {"jobs": ordered}).strip()
            yield Event(html, event=list_event, id=f"{list_event}.{len(ordered)}.{ordered[0].pk}")
        for job in jobs:
            html = render_job(job, fmt, templates)
            yield Event(html, event=f"{prefix}-{job.pk}", id=job.version())


async def merge[T](*sources: AsyncIterator[T]) -> AsyncGenerator[T]:
    """The items of several producers, as each arrives, on one stream.

    Demand-driven like ``streams.http.heartbeat``: each source is asked for
    its next item only once the consumer took its previous one, so at most
    one item per source waits here and a slow client's backlog stays in the
    producers' own bounded queues (a log stream's "N skipped" still works).
    A source that fails ends the merged stream with its exception; closing
    the merged stream cancels the pumps, whose generators then clean up.
    """
    ready: asyncio.Queue[tuple[int, T | None, BaseException | None, bool]] = asyncio.Queue()
    demand = [asyncio.Event() for _ in sources]

    async def pump(index: int, source: AsyncIterator[T]) -> None:
        try:
            while True:
                await demand[index].wait()
                demand[index].clear()
                ready.put_nowait((index, await anext(source), None, False))
        except StopAsyncIteration:
            ready.put_nowait((index, None, None, True))  # the others go on
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            ready.put_nowait((index, None, error, False))

    pumps = [asyncio.create_task(pump(i, source)) for i, source in enumerate(sources)]
    for wanted in demand:
        wanted.set()
    running = len(sources)
    try:
        while running:
            index, item, error, exhausted = await ready.get()
            if error is not None:
                raise error
            if exhausted:
                running -= 1
                continue
            yield cast(T, item)
            demand[index].set()
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for source in sources:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
