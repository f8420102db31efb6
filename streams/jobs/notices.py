"""A small notice on every open page when one of the user's jobs finishes or fails.

``with_notices(messages, user_id)`` merges a page's own stream with a
``notice`` event per job of that user (in any ``JobTable``: every kind)
that ends ``succeeded`` or ``failed`` after the connection opened: the page
keeps its one SSE connection, and ``static/streamboard/notices.js`` (loaded
by ``base.html``) shows the notice whatever the page. The jobs come from the
same per-user hubs as the job pages (one per user per process, however many
tabs), so a notice costs no query of its own.

Notice events carry no ``id:`` on purpose: an event without one leaves the
browser's last event id as it was, so a log page still resumes from its last
line's cursor. Only the HTML format gets them; JSON and text clients see the
stream they asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from streams.http.sse import Event, Message
from streams.jobs.encoding import merge
from streams.jobs.hub import Scope, subscribe
from streams.jobs.models import TABLES, TRACKED, JobStatus
from streams.jobs.tables import JobTable

NOTIFIED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def render_notice(table: JobTable, job: Any) -> str:
    context = {
        "job": job,
        "label": getattr(job, table.label_field),
        "url": reverse(table.page_url_name, args=[job.pk]),
    }
    return render_to_string(f"{TRACKED}#notice", context).strip()


async def _table_notices(table: JobTable, user_id: int, since: Any) -> AsyncIterator[Message]:
    seen: dict[Any, str] = {}
    async for batch in subscribe(Scope(table, user_id=user_id)):
        for job in batch:
            before = seen.get(job.pk)
            seen[job.pk] = job.status
            if job.status not in NOTIFIED or before == job.status:
                continue
            # A job that ended before the page opened is old news.
            if before is None and (job.finished_at is None or job.finished_at < since):
                continue
            yield Event(render_notice(table, job), event="notice")


def job_notices(user_id: int) -> AsyncIterator[Message]:
    """``notice`` events for ``user_id``'s jobs that end from now on."""
    since = timezone.now()
    return merge(*(_table_notices(table, user_id, since) for table in TABLES))


def with_notices(messages: AsyncIterator[Message], user_id: int | None) -> AsyncIterator[Message]:
    """A page's stream with the user's job notices merged in (none for no user)."""
    if user_id is None:
        return messages
    return merge(messages, job_notices(user_id))
