"""The job-table vocabulary: channel-layer groups and the message round trip; the stream form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from streams.http.sse import Event, Message
from streams.jobs.encoding import merge
from streams.jobs.forms import JobStreamForm
from streams.jobs.models import EXPORT_JOBS, ExportJob


@pytest.mark.django_db
def test_a_progress_message_round_trips_a_jobs_state(superuser: User) -> None:
    job = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", rows_done=5, started_at=timezone.now()
    )
    copy = EXPORT_JOBS.deserialize(EXPORT_JOBS.serialize(job))
    assert copy.version() == job.version()
    assert copy.started_at == job.started_at
    assert EXPORT_JOBS.groups(job) == (
        f"export-job-{job.pk}",
        f"export-user-{superuser.pk}",
        "export-jobs",
    )


@pytest.mark.parametrize(("value", "fmt"), [("", "html"), ("html", "html"), ("json", "json")])
def test_the_stream_form_defaults_to_html(value: str, fmt: str) -> None:
    form = JobStreamForm({"format": value})
    assert form.is_valid()
    assert form.fmt == fmt


def test_a_bad_format_names_the_parameter() -> None:
    form = JobStreamForm({"format": "xml"})
    assert not form.is_valid()
    assert form.error_text() == "format: must be html or json\n"


async def test_merge_interleaves_sources_and_closes_them_all_when_closed() -> None:
    closed: list[str] = []
    release = asyncio.Event()

    async def source(name: str, count: int) -> AsyncIterator[Message]:
        try:
            for index in range(count):
                yield Event(f"{name}{index}", event=name)
            await release.wait()  # then idle, like a stream between updates
        finally:
            closed.append(name)

    merged = merge(source("a", 2), source("b", 3))
    seen = [await anext(merged) for _ in range(5)]
    assert sorted(str(event.data) for event in seen if isinstance(event, Event)) == [
        "a0",
        "a1",
        "b0",
        "b1",
        "b2",
    ]
    await merged.aclose()
    assert sorted(closed) == ["a", "b"]


async def test_a_failing_source_ends_the_merged_stream_with_its_error() -> None:
    async def broken() -> AsyncIterator[Message]:
        yield Event("first")
        raise RuntimeError("source broke")

    merged = merge(broken())
    assert isinstance(await anext(merged), Event)
    with pytest.raises(RuntimeError, match="source broke"):
        await anext(merged)


async def test_merge_ends_when_every_source_has_ended_and_reads_nothing_ahead() -> None:
    asked: list[str] = []

    async def source(name: str, count: int) -> AsyncIterator[Message]:
        for index in range(count):
            asked.append(f"{name}{index}")
            yield Event(f"{name}{index}")

    merged = merge(source("a", 3), source("b", 1))
    first = await anext(merged)
    assert isinstance(first, Event)
    # One item asked of each source, however fast they are: nothing read ahead.
    assert len(asked) <= 2
    rest = [event async for event in merged]
    assert len(rest) == 3
    assert sorted(asked) == ["a0", "a1", "a2", "b0"]
