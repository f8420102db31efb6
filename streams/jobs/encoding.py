"""Job states as SSE events: the bar's HTML fragment, or a small JSON object.

Each job's updates are events named ``job-<id>`` whose data is what the page
swaps in with htmx (``html``) or the row's ``state()`` (``json``). Every
event's ``id:`` is the job's state version: a progress bar is a state, so a
reconnecting client is simply sent the current state again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from django.template.loader import render_to_string

from streams.http.sse import Event, Message
from streams.jobs.hub import Scope, subscribe

Format = Literal["html", "json"]
FORMATS: tuple[Format, ...] = ("html", "json")


@dataclass(frozen=True)
class Templates:
    """The fragments one kind of job page swaps: one job's bar, and the whole list."""

    job: str
    job_list: str


EXPORT_TEMPLATES = Templates(job="streams/_job.html", job_list="streams/_job_list.html")
TRACKED = "streams/tracked_jobs.html"
TRACKED_TEMPLATES = Templates(job=f"{TRACKED}#job", job_list=f"{TRACKED}#job-list")
TRACKED_DETAIL_TEMPLATES = Templates(job=f"{TRACKED}#job-detail", job_list=f"{TRACKED}#job-list")


def render_job(job: Any, fmt: Format, templates: Templates = EXPORT_TEMPLATES) -> str:
    if fmt == "json":
        return orjson.dumps(job.state()).decode()
    return render_to_string(templates.job, {"job": job}).strip()


async def job_events(
    scope: Scope,
    fmt: Format,
    *,
    listing: bool = False,
    templates: Templates = EXPORT_TEMPLATES,
    keep: Callable[[Any], bool] | None = None,
) -> AsyncIterator[Message]:
    """``job-<id>`` events; with ``listing``, also ``jobs`` when a job appears.

    The list page cannot know about a job created after it loaded, so when
    the stream first sees a job id it sends the whole list (an idempotent
    ``jobs`` swap, each entry wired to its own ``job-<id>`` event) before the
    per-job events. ``keep`` narrows the scope's jobs (a list page's filter).
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
            ordered = sorted(latest.values(), key=lambda job: job.pk, reverse=True)
            html = render_to_string(templates.job_list, {"jobs": ordered}).strip()
            yield Event(html, event="jobs", id=f"jobs.{len(ordered)}.{ordered[0].pk}")
        for job in jobs:
            yield Event(render_job(job, fmt, templates), event=f"job-{job.pk}", id=job.version())
