"""The progress API in-process: the reporter, the wrapper's ends, start, retry, cancel, admin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.tasks import task
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from streams.jobs.models import ExportJob, Job, JobStatus
from streams.jobs.tracking import JobStopped, Progress, cancel, retry, start
from tests.support.tracked_tasks import count_widgets

pytestmark = pytest.mark.services


@task()
def untracked() -> None:
    """A plain task: ``start`` refuses it."""


def running_job(user: User | None = None, **fields: Any) -> Job:
    return Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        user=user,
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        **fields,
    )


@pytest.mark.django_db
def test_the_reporter_saves_at_most_once_per_interval_and_a_cancel_stops_it(
    settings: Any,
) -> None:
    settings.STREAMBOARD_EXPORT_PROGRESS_SECONDS = 0.1
    job = running_job()
    now = [1000.0]
    progress = Progress(job, clock=lambda: now[0])
    progress.total = 100
    progress.step("reading")
    progress.advance(10)
    assert Job.objects.get(pk=job.pk).done == 0  # within the interval: nothing written
    now[0] += 0.11
    progress.advance(5)
    saved = Job.objects.get(pk=job.pk)
    assert (saved.done, saved.total, saved.step) == (15, 100, "reading")
    assert [step["name"] for step in saved.steps] == ["reading"]
    assert saved.heartbeat_at is not None

    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    progress.advance(1)  # not due yet: no query, no exception
    assert not progress.cancelled  # not due either: the last known state
    now[0] += 0.11
    assert progress.cancelled
    with pytest.raises(JobStopped):
        progress.check()
    now[0] += 0.11
    with pytest.raises(JobStopped):
        progress.advance(1)
    assert Job.objects.get(pk=job.pk).done == 15


@pytest.mark.django_db
def test_a_tracked_task_run_to_its_end_records_steps_result_and_progress(
    superuser: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = start(count_widgets, 6, 0, user=superuser)
    assert (job.kind, job.unit, job.args) == ("test.widgets", "widgets", [6, 0])
    result = DBTaskResult.objects.get(id=Job.objects.get(pk=job.pk).task_id)
    assert result.args_kwargs == {"args": [job.pk, 6, 0], "kwargs": {}}

    assert count_widgets.call(job.pk, 6, 0) == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert (job.done, job.total, job.percent) == (6, 6, 100)
    assert [step["name"] for step in job.steps] == ["counting", "polishing"]
    assert [step["done"] for step in job.steps] == [0, 3]
    assert (job.result_url, job.result_summary) == ("/admin/", "6 widgets counted")
    assert job.finished_at is not None
    # A second run of the same task (a duplicate delivery) leaves the job alone.
    assert count_widgets.call(job.pk, 6, 0) == "succeeded"


@pytest.mark.django_db
def test_a_failing_task_fails_its_job_with_the_error_and_the_task_fails_too(
    superuser: User,
) -> None:
    job = Job.objects.create(kind="test.widgets", task_path=count_widgets.module_path)
    with pytest.raises(RuntimeError, match="widget 2 is broken"):
        count_widgets.call(job.pk, 5, 0, fail_at=2)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "RuntimeError: widget 2 is broken"
    assert job.done == 2


@pytest.mark.django_db
def test_a_job_cancelled_while_queued_never_runs() -> None:
    job = Job.objects.create(kind="test.widgets", task_path=count_widgets.module_path)
    assert cancel(job)
    assert count_widgets.call(job.pk, 5, 0) == "cancelled"
    job.refresh_from_db()
    assert (job.status, job.done, job.started_at) == (JobStatus.CANCELLED, 0, None)
    assert not cancel(job)  # a finished job stays as it ended


@pytest.mark.django_db
def test_retry_enqueues_the_same_task_and_arguments_as_a_linked_job(
    superuser: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    failed = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        args=[3, 0],
        kwargs={"fail_at": 1},
        unit="widgets",
        status=JobStatus.FAILED,
        user=superuser,
    )
    with django_capture_on_commit_callbacks(execute=True):
        again = retry(failed)
    again.refresh_from_db()
    assert again.retry_of == failed
    assert (again.task_path, again.args, again.kwargs) == (
        failed.task_path,
        [3, 0],
        {"fail_at": 1},
    )
    assert (again.status, again.user, again.kind) == (JobStatus.QUEUED, superuser, "test.widgets")
    result = DBTaskResult.objects.get(id=again.task_id)
    assert result.task_path == count_widgets.module_path
    assert result.args_kwargs == {"args": [again.pk, 3, 0], "kwargs": {"fail_at": 1}}
    assert list(failed.retries.all()) == [again]


@pytest.mark.django_db
def test_only_a_tracked_task_can_be_started_or_retried() -> None:
    with pytest.raises(TypeError, match="not a @tracked task"):
        start(untracked)
    job = Job.objects.create(kind="plain", task_path=untracked.module_path)
    with pytest.raises(TypeError, match="not a @tracked task"):
        retry(job)
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_nothing_is_enqueued_when_the_transaction_that_started_a_job_rolls_back() -> None:
    def start_and_fail() -> None:
        with transaction.atomic():
            start(count_widgets, 1, 0)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        start_and_fail()
    assert not Job.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_the_admin_cancels_and_retries_jobs(
    superuser: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    client = Client()
    client.force_login(superuser)
    active = running_job(superuser)
    ended = running_job(superuser, args=[2, 0])
    Job.objects.filter(pk=ended.pk).update(status=JobStatus.FAILED)
    listing = client.get("/admin/streams/job/")
    assert listing.status_code == 200
    assert f'href="/jobs/{active.pk}/"' in listing.content.decode()
    assert client.get("/admin/streams/job/add/").status_code == 403

    def act(action: str, pks: list[int]) -> None:
        response = client.post(
            "/admin/streams/job/",
            {"action": action, "index": "0", "_selected_action": [str(pk) for pk in pks]},
        )
        assert response.status_code == 302

    act("cancel_jobs", [active.pk, ended.pk])
    assert Job.objects.get(pk=active.pk).status == JobStatus.CANCELLED
    assert Job.objects.get(pk=ended.pk).status == JobStatus.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        act("retry_jobs", [ended.pk])
    again = Job.objects.get(retry_of=ended)
    assert again.args == [2, 0]
    assert again.task_id


@pytest.mark.django_db
def test_the_admin_fails_a_stale_job_when_listing(superuser: User, settings: Any) -> None:
    settings.STREAMBOARD_EXPORT_STALE_SECONDS = 5
    stale = running_job(superuser)
    Job.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    client = Client()
    client.force_login(superuser)
    assert client.get("/admin/streams/job/").status_code == 200
    stale.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "stopped responding" in stale.error


@pytest.mark.django_db
def test_the_export_admin_cancels_active_exports_only(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    running = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", status=ExportJob.Status.RUNNING
    )
    done = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", status=ExportJob.Status.SUCCEEDED
    )
    response = client.post(
        "/admin/streams/exportjob/",
        {
            "action": "cancel_selected",
            "index": "0",
            "_selected_action": [str(running.pk), str(done.pk)],
        },
    )
    assert response.status_code == 302
    assert ExportJob.objects.get(pk=running.pk).status == ExportJob.Status.CANCELLED
    assert ExportJob.objects.get(pk=done.pk).status == ExportJob.Status.SUCCEEDED
