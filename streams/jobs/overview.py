"""The overview's job panel: running jobs and the last day's failures, of every table, live.

The first render (``overview_sections``) and the stream
(``overview_job_events``, merged into the overview's one SSE connection)
pick jobs with the same rule, ``on_overview``, and show at most
``OVERVIEW_LIMIT`` per table, so a reconnect shows what a reload would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from django.utils import timezone

from streams.http.sse import Message
from streams.jobs.encoding import job_events, merge
from streams.jobs.hub import Scope
from streams.jobs.models import ACTIVE_STATUSES, TABLES, JobStatus

OVERVIEW_LIMIT = 10
FAILURES_SHOWN_FOR = timedelta(days=1)


def on_overview(job: Any) -> bool:
    """Running (or queued), or failed within the last day."""
    if job.status in ACTIVE_STATUSES:
        return True
    recent = timezone.now() - FAILURES_SHOWN_FOR
    finished = job.finished_at
    return job.status == JobStatus.FAILED and finished is not None and finished > recent


def overview_sections(user: Any) -> list[dict[str, Any]]:
    """Each table's jobs for the overview's first render, newest first."""
    recent = timezone.now() - FAILURES_SHOWN_FOR
    sections = []
    for table in TABLES:
        rows = table.visible_to(user).select_related("user")
        active = list(rows.filter(status__in=ACTIVE_STATUSES).order_by("-pk")[:OVERVIEW_LIMIT])
        failed = list(
            rows.filter(status=JobStatus.FAILED, finished_at__gt=recent).order_by("-pk")[
                :OVERVIEW_LIMIT
            ]
        )
        jobs = sorted(active + failed, key=lambda job: job.pk, reverse=True)[:OVERVIEW_LIMIT]
        sections.append({"table": table, "jobs": jobs})
    return sections


def overview_job_events(user: Any) -> AsyncIterator[Message]:
    """The panel's live updates: each table's list and bars (``jobs``, ``job-<id>``...)."""
    user_id = None if user.is_superuser else user.pk
    return merge(
        *(
            job_events(
                Scope(table, user_id=user_id),
                "html",
                templates=table.listed,
                listing=True,
                keep=on_overview,
                prefix=table.prefix,
                list_event=table.list_event,
                limit=OVERVIEW_LIMIT,
            )
            for table in TABLES
        )
    )
