"""The progress API with real ``db_worker`` processes and a real server, on a non-export task.

The task is ``tests.support.tracked_tasks.count_widgets``: it counts widgets
at a pace the test chooses, in two steps, with a result. Everything a test
asserts is read from the real processes: SSE events from the server, rows
and the task backend's records written by the worker.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from httpx_sse import connect_sse

from streams.jobs.models import ExportJob, Job, JobStatus
from streams.jobs.tracking import start
from tests.support.export_worker import run_worker
from tests.support.live import LiveServer
from tests.support.personas import session_cookie
from tests.support.tracked_tasks import count_widgets
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.services]

FAST_PROGRESS = {"STREAMBOARD_EXPORT_PROGRESS_SECONDS": "0.05"}


@pytest.fixture
def root_client(transactional_db: None, superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def state(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def task_result(job: Job) -> DBTaskResult:
    return DBTaskResult.objects.get(id=state(job).task_id)


def task_finished(job: Job) -> bool:
    return task_result(job).finished_at is not None


def json_states(url: str, cookie: str, during: Any = None) -> list[dict[str, Any]]:
    """States from a JSON job stream until the job ends (the stream opened first)."""
    states: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=30, headers={"Cookie": cookie}) as client,
        connect_sse(client, "GET", url) as source,
    ):
        assert source.response.status_code == 200
        with during or run_worker(FAST_PROGRESS):
            for event in source.iter_sse():
                if not event.data:
                    continue  # the retry hint
                states.append(orjson.loads(event.data))
                if states[-1]["status"] not in ("queued", "running"):
                    break
    return states


def test_a_non_export_tasks_progress_steps_and_result_reach_sse_clients_live(
    live: LiveServer, superuser: User
) -> None:
    cookie = session_cookie(superuser)
    job = start(count_widgets, 40, 0.03, user=superuser)
    states = json_states(live.url(f"/streams/jobs/{job.pk}/?format=json"), cookie)

    assert states[0]["status"] == "queued"
    running = [s for s in states if s["status"] == "running"]
    moving = [s["done"] for s in running if 0 < s["done"] < 40]
    assert len(moving) >= 4, states  # the bar moved while the task ran
    assert moving == sorted(moving)
    assert {s["unit"] for s in states} == {"widgets"}
    assert next(s["step"] for s in running if s["step"]) == "counting"
    assert "polishing" in {s["step"] for s in running}
    assert states[-1] == {
        "id": job.pk,
        "kind": "test.widgets",
        "status": "succeeded",
        "done": 40,
        "total": 40,
        "unit": "widgets",
        "step": "polishing",
        "result_url": "/admin/",
        "result_summary": "40 widgets counted",
        "error": "",
    }
    assert task_result(job).status == "SUCCESSFUL"

    # The list stream: each table's list first, then its jobs' bars, on one connection;
    # an export is listed as one kind among the others.
    export = ExportJob.objects.create(user=superuser, model_label="dashboard.order")
    with (
        httpx.Client(timeout=30, headers={"Cookie": cookie}) as client,
        connect_sse(client, "GET", live.url("/streams/jobs/")) as source,
    ):
        events = {}
        for event in source.iter_sse():
            if event.data:
                events[event.event] = event.data
            if len(events) == 4:
                break
    assert set(events) == {"jobs", f"job-{job.pk}", "exports", f"export-{export.pk}"}
    assert f'sse-swap="job-{job.pk}"' in events["jobs"]
    assert 'data-percent="100"' in events[f"job-{job.pk}"]
    assert "40 widgets counted" in events[f"job-{job.pk}"]
    assert f'sse-swap="export-{export.pk}"' in events["exports"]
    assert 'data-status="queued"' in events[f"export-{export.pk}"]


def test_cancel_stops_the_task_within_a_second(root_client: Client, superuser: User) -> None:
    job = start(count_widgets, 5000, 0.01, user=superuser)
    with run_worker(FAST_PROGRESS):
        wait_until(lambda: state(job).done > 0)
        response = root_client.post(f"/jobs/{job.pk}/cancel", headers={"HX-Request": "true"})
        assert response.status_code == 204
        cancelled_at = time.monotonic()
        wait_until(lambda: task_finished(job), timeout=1.0)
        assert time.monotonic() - cancelled_at < 1.0
    stopped = state(job)
    assert stopped.status == JobStatus.CANCELLED
    assert 0 < stopped.done < 5000
    assert task_result(job).return_value == "cancelled"


def test_retry_runs_the_same_task_and_arguments_as_a_linked_job(
    root_client: Client, superuser: User
) -> None:
    failing = start(count_widgets, 5, 0, fail_at=3, user=superuser)
    cancelled = start(count_widgets, 7, 0, user=superuser)
    assert root_client.post(f"/jobs/{cancelled.pk}/cancel").status_code == 303
    with run_worker(FAST_PROGRESS):
        wait_until(lambda: task_finished(failing) and task_finished(cancelled))
        assert state(failing).status == JobStatus.FAILED
        assert state(failing).error == "RuntimeError: widget 3 is broken"
        assert task_result(failing).status == "FAILED"  # the backend agrees
        assert state(cancelled).started_at is None  # cancelled while queued: never ran

        response = root_client.post(f"/jobs/{cancelled.pk}/retry")
        assert response.status_code == 303
        again = Job.objects.get(retry_of=cancelled)
        assert response["Location"] == f"/jobs/{again.pk}/"
        wait_until(lambda: task_finished(again))
    done = state(again)
    assert (done.status, done.done, done.args) == (JobStatus.SUCCEEDED, 7, [7, 0])
    assert state(cancelled).status == JobStatus.CANCELLED


def test_a_killed_workers_job_is_failed_by_another_workers_timer_with_nobody_watching(
    transactional_db: None, superuser: User
) -> None:
    job = start(count_widgets, 5000, 0.01, user=superuser)
    with run_worker(FAST_PROGRESS) as worker:
        wait_until(lambda: state(job).done > 0)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert state(job).status == JobStatus.RUNNING
    assert task_result(job).status == "RUNNING"

    # No page, stream or admin is loaded: only the other worker's timer can reap.
    liveness = {"STREAMBOARD_EXPORT_STALE_SECONDS": "1", "STREAMBOARD_JOB_REAP_SECONDS": "0.2"}
    with run_worker(liveness):
        wait_until(lambda: state(job).status == JobStatus.FAILED, timeout=15)
    failed = state(job)
    assert "stopped responding" in failed.error
    assert task_result(job).status == "FAILED"


def test_a_long_step_without_progress_calls_is_not_mistaken_for_a_dead_worker(
    transactional_db: None, superuser: User
) -> None:
    # One widget taking 3 s with no progress call in between, a 1 s stale threshold:
    # only the worker's own timer beating for it keeps the reapers away.
    job = start(count_widgets, 1, 3.0, user=superuser)
    liveness = {"STREAMBOARD_EXPORT_STALE_SECONDS": "1", "STREAMBOARD_JOB_REAP_SECONDS": "0.2"}
    with run_worker({**FAST_PROGRESS, **liveness}), run_worker(liveness):
        wait_until(lambda: task_finished(job), timeout=30)
    assert state(job).status == JobStatus.SUCCEEDED


def test_a_worker_stopped_with_sigterm_requeues_its_job_for_the_next_worker(
    transactional_db: None, superuser: User
) -> None:
    job = start(count_widgets, 400, 0.01, user=superuser)
    first_task = state(job).task_id
    with run_worker(FAST_PROGRESS) as worker:
        wait_until(lambda: state(job).done > 0)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=5)
    requeued = state(job)
    assert (requeued.status, requeued.done, requeued.steps) == (JobStatus.QUEUED, 0, [])
    assert requeued.task_id != first_task
    with run_worker(FAST_PROGRESS):
        wait_until(lambda: state(job).status == JobStatus.SUCCEEDED, timeout=30)
    assert state(job).done == 400


def test_every_worker_prunes_old_jobs_on_a_timer(transactional_db: None) -> None:
    old = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        status=JobStatus.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=3),
    )
    recent = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        status=JobStatus.SUCCEEDED,
        finished_at=timezone.now(),
    )
    env = {"STREAMBOARD_JOB_RETENTION_DAYS": "2", "STREAMBOARD_JOB_REAP_SECONDS": "0.2"}
    with run_worker(env):
        wait_until(lambda: not Job.objects.filter(pk=old.pk).exists(), timeout=15)
    assert Job.objects.filter(pk=recent.pk).exists()


def test_a_job_that_ends_sends_a_notice_over_another_pages_own_stream(
    live_server_factory: Any, superuser: User, tmp_path: Any
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO started\n")
    live = live_server_factory(env={"STREAMBOARD_LOGS": f"app={log}"})
    ended_before = Job.objects.create(
        kind="test.widgets",
        task_path=count_widgets.module_path,
        user=superuser,
        status=JobStatus.SUCCEEDED,
        finished_at=timezone.now() - timedelta(seconds=30),
    )
    notices: list[Any] = []
    with (
        httpx.Client(timeout=30, headers={"Cookie": session_cookie(superuser)}) as client,
        connect_sse(client, "GET", live.url("/streams/overview/")) as source,
    ):
        assert source.response.status_code == 200
        events = source.iter_sse()
        page_id = next(event for event in events if event.event == "source-app").id
        ids_at_notices = []
        panels: list[str] = []  # the overview's job panel, live
        succeeding = start(count_widgets, 3, 0, user=superuser)
        failing = start(count_widgets, 3, 0, fail_at=1, user=superuser)
        with run_worker(FAST_PROGRESS):
            for event in events:
                if event.event == "notice":
                    notices.append(event)
                    ids_at_notices.append((page_id, event.id))
                elif event.data:
                    page_id = event.id
                if event.event == "jobs":
                    panels.append(event.data)
                if len(notices) == 2:
                    break
    by_job = {
        job.pk: next(n.data for n in notices if f'href="/jobs/{job.pk}/"' in n.data)
        for job in (succeeding, failing)
    }
    assert "finished" in by_job[succeeding.pk]
    assert "failed" in by_job[failing.pk]
    # A notice has no id of its own: the page's last event id (its resume cursor) stays.
    assert all(before == after for before, after in ids_at_notices), ids_at_notices
    assert all(f'href="/jobs/{ended_before.pk}/"' not in notice.data for notice in notices)
    # The overview's panel listed the new jobs as they appeared, the old success never.
    assert any(f'id="job-{succeeding.pk}"' in panel for panel in panels), panels
    assert all(f'id="job-{ended_before.pk}"' not in panel for panel in panels)
