"""Reaping (with the task backend's record) and pruning of tracked jobs, in-process."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from streams.jobs.liveness import beat_running_here, prune, reap_all, running_here
from streams.jobs.models import ExportJob, Job, JobStatus
from tests.support.tracked_tasks import count_widgets

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


def finished_job(age_days: float, status: str = JobStatus.SUCCEEDED) -> Job:
    return Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        status=status,
        finished_at=timezone.now() - timedelta(days=age_days),
    )


@pytest.mark.django_db
def test_a_reaped_jobs_task_result_is_failed_too(settings: Any) -> None:
    settings.STREAMBOARD_EXPORT_STALE_SECONDS = 5
    result = count_widgets.enqueue(0, 3, 0)
    DBTaskResult.objects.filter(id=result.id).update(status="RUNNING")
    job = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        status=JobStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(seconds=30),
        task_id=str(result.id),
    )
    fresh = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        status=JobStatus.RUNNING,
        heartbeat_at=timezone.now(),
    )
    assert reap_all() == {"tracked": [job.pk]}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert Job.objects.get(pk=fresh.pk).status == JobStatus.RUNNING
    record = DBTaskResult.objects.get(id=result.id)
    assert record.status == "FAILED"
    assert record.finished_at is not None


@pytest.mark.django_db
def test_pruning_deletes_finished_jobs_past_the_retention_with_their_files(
    superuser: User, settings: Any, export_dir: Path
) -> None:
    settings.STREAMBOARD_JOB_RETENTION_DAYS = 7
    old = [finished_job(8), finished_job(30, JobStatus.FAILED), finished_job(9, "cancelled")]
    recent = finished_job(6)
    running = Job.objects.create(
        kind="test.widgets", task_path=count_widgets.module_path, status=JobStatus.RUNNING
    )
    export = ExportJob.objects.create(
        user=superuser,
        model_label="dashboard.order",
        status=ExportJob.Status.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=10),
    )
    export_dir.mkdir(parents=True)
    (export_dir / export.final_name).write_bytes(b"{}\n")

    assert prune() == {"tracked": 3, "export": 1}
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}
    assert not any(Job.objects.filter(pk=job.pk).exists() for job in old)
    assert not ExportJob.objects.exists()
    assert not (export_dir / export.final_name).exists()


@pytest.mark.django_db
def test_the_prune_command_takes_a_retention_of_its_own() -> None:
    finished_job(2)
    kept = finished_job(0.5)
    out = io.StringIO()
    call_command("prune_jobs", "--days", "1", stdout=out)
    assert "tracked: 1 pruned" in out.getvalue()
    assert list(Job.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_the_timer_beats_for_jobs_running_in_its_own_process_only(settings: Any) -> None:
    settings.STREAMBOARD_EXPORT_STALE_SECONDS = 5
    old = timezone.now() - timedelta(seconds=30)

    def running() -> Job:
        return Job.objects.create(
            kind="test.widgets",
            task_path=count_widgets.module_path,
            status=JobStatus.RUNNING,
            heartbeat_at=old,
        )

    here, elsewhere = running(), running()
    running_here.add(here.pk)
    try:
        assert beat_running_here() == 1
    finally:
        running_here.discard(here.pk)
    assert reap_all() == {"tracked": [elsewhere.pk]}
    assert Job.objects.get(pk=here.pk).status == JobStatus.RUNNING
    assert beat_running_here() == 0  # nothing registered any more
