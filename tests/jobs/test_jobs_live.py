"""Background exports with a real ``db_worker`` process (and a real server where it matters).

The worker and the server are subprocesses sharing the file-based SQLite test
database; jobs are started through the real admin action, so the task is
enqueued by django-tasks-db and claimed by the worker, never run in-process.
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from dashboard.models import Order
from streams.jobs.models import ExportJob
from tests.support.admin_export import confirm_export
from tests.support.demo_orders import make_orders
from tests.support.export_worker import SLOW_EXPORT, export_env, run_worker
from tests.support.http_body import get
from tests.support.live import LiveServer
from tests.support.personas import session_cookie
from tests.support.sse import open_sse, read_events
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.services]


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    """A private export directory, shared with the worker and server subprocesses."""
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def live(live_server_factory: Callable[..., LiveServer], export_dir: Path) -> LiveServer:
    return live_server_factory(env=export_env())


@pytest.fixture
def root_client(transactional_db: None, superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def start_export(client: Client, query: str = "") -> ExportJob:
    """The admin action with "select all" on the changelist filtered by ``query``."""
    response = client.post(
        f"/admin/dashboard/order/{query}",
        {
            "action": "export_in_background",
            "index": "0",
            "select_across": "1",
            "_selected_action": [str(Order.objects.values_list("pk", flat=True).first())],
            **confirm_export(),
        },
    )
    assert response.status_code == 302
    return ExportJob.objects.latest("pk")


def job_state(pk: int) -> ExportJob:
    return ExportJob.objects.get(pk=pk)


def finished(pk: int) -> bool:
    return job_state(pk).status not in ExportJob.ACTIVE


def task_done(job: ExportJob) -> bool:
    return DBTaskResult.objects.filter(
        id=job_state(job.pk).task_id, finished_at__isnull=False
    ).exists()


def test_a_real_worker_exports_the_same_bytes_as_the_streamed_and_command_line_exports(
    live: LiveServer, root_client: Client, cookie: str, tmp_path: Path
) -> None:
    make_orders(120)
    job = start_export(root_client, "?status__exact=paid")
    assert job.status == ExportJob.Status.QUEUED
    with run_worker({"STREAMBOARD_EXPORT_CHUNK_SIZE": "11"}):
        wait_until(lambda: finished(job.pk))
        wait_until(lambda: task_done(job))
    job.refresh_from_db()
    assert job.status == ExportJob.Status.SUCCEEDED, job.error
    assert DBTaskResult.objects.get(id=job.task_id).return_value == "succeeded"
    path = job.result_path()
    assert path is not None
    background = path.read_bytes()

    streamed = get(live, "/exports/dashboard.order.ndjson?status=paid", cookie)
    assert streamed.complete
    cli = tmp_path / "cli.ndjson"
    call_command("export", "dashboard.order", "status=paid", output=str(cli), stderr=io.StringIO())

    assert background == streamed.body == cli.read_bytes()
    assert job.rows_done == job.rows_total == Order.objects.filter(status="paid").count() == 80
    assert job.bytes_written == len(background)
    assert job.started_at is not None
    assert job.finished_at is not None


def test_progress_reaches_an_sse_client_of_the_real_server_while_the_worker_runs(
    live: LiveServer, root_client: Client, cookie: str
) -> None:
    make_orders(300)
    job = start_export(root_client)
    path = f"/streams/exports/{job.pk}/?format=json"
    events: list[Any] = []
    arrivals: list[float] = []

    def done(event: Any) -> bool:
        return orjson.loads(event.data)["status"] not in ("queued", "running")

    # The stream is open before the worker starts: every state is observed live.
    with open_sse(live, path, cookie, timeout=30) as source, run_worker(SLOW_EXPORT):
        for event in source:
            events.append(event)
            arrivals.append(time.monotonic())
            if done(event):
                break
    states = [orjson.loads(event.data) for event in events]
    assert all(event.event == f"job-{job.pk}" for event in events)
    assert all(event.id for event in events)
    assert len({event.id for event in events}) == len(events)
    assert states[0]["status"] == "queued"
    assert states[-1] == {
        "id": job.pk,
        "status": "succeeded",
        "done": 300,
        "total": 300,
        "error": "",
    }
    running = [s["done"] for s in states if s["status"] == "running" and 0 < s["done"] < 300]
    assert len(running) >= 4, states  # the bar moved while rows flowed
    assert running == sorted(running)
    # At least 4 updates a second while rows flow (the median gap, robust to a busy machine).
    times = [t for t, s in zip(arrivals, states, strict=True) if s["status"] == "running"]
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    assert gaps[len(gaps) // 2] <= 0.25, gaps

    # The jobs list stream starts with the list, then the current state: a download link.
    html = read_events(live, "/streams/exports/", cookie, until=lambda e: e.event != "jobs")
    assert [event.event for event in html] == ["jobs", f"job-{job.pk}"]
    assert f'sse-swap="job-{job.pk}"' in html[0].data
    assert all(event.id for event in html)
    assert f'href="/exports/{job.pk}/download"' in html[1].data
    assert 'data-percent="100"' in html[1].data


def test_cancel_stops_the_worker_within_a_second_and_removes_the_partial_file(
    root_client: Client,
) -> None:
    make_orders(2000)
    job = start_export(root_client)
    with run_worker(SLOW_EXPORT):
        wait_until(
            lambda: job_state(job.pk).rows_done > 0 and job_state(job.pk).partial_path().exists()
        )
        response = root_client.post(f"/exports/{job.pk}/cancel", headers={"HX-Request": "true"})
        assert response.status_code == 204
        cancelled_at = time.monotonic()
        wait_until(lambda: not job.partial_path().exists() and task_done(job), timeout=1.0)
        assert time.monotonic() - cancelled_at < 1.0
    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED
    assert 0 < job.rows_done < 2000
    assert job.result_path() is None
    assert not (job.partial_path().parent / job.final_name).exists()
    assert DBTaskResult.objects.get(id=job.task_id).return_value == "cancelled"
    assert root_client.get(f"/exports/{job.pk}/download").status_code == 404


def test_a_sigkilled_worker_leaves_a_job_that_the_reaper_marks_failed(
    root_client: Client, settings: Any
) -> None:
    make_orders(2000)
    job = start_export(root_client)
    with run_worker(SLOW_EXPORT) as worker:
        wait_until(
            lambda: job_state(job.pk).rows_done > 0 and job_state(job.pk).partial_path().exists()
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert job_state(job.pk).status == ExportJob.Status.RUNNING
    assert job.partial_path().exists()

    settings.STREAMBOARD_EXPORT_STALE_SECONDS = 0.5

    def reaped() -> bool:
        # Loading the page runs the reaper.
        assert root_client.get(f"/exports/{job.pk}/").status_code == 200
        return job_state(job.pk).status == ExportJob.Status.FAILED

    wait_until(reaped, timeout=10)
    job.refresh_from_db()
    assert "stopped responding" in job.error
    assert not job.partial_path().exists()
    assert job.result_path() is None
    assert root_client.get(f"/exports/{job.pk}/download").status_code == 404
    assert "stopped responding" in root_client.get(f"/exports/{job.pk}/").content.decode()


@pytest.fixture
def finished_job(root_client: Client) -> ExportJob:
    make_orders(500)
    job = start_export(root_client)
    with run_worker():
        wait_until(lambda: finished(job.pk))
    job.refresh_from_db()
    assert job.status == ExportJob.Status.SUCCEEDED
    return job


def test_range_downloads_resume_to_the_whole_file_with_a_stable_etag(
    live: LiveServer, finished_job: ExportJob, cookie: str
) -> None:
    path = finished_job.result_path()
    assert path is not None
    whole_on_disk = path.read_bytes()
    url = live.url(f"/exports/{finished_job.pk}/download")
    with httpx.Client(headers={"Cookie": cookie}, timeout=30) as client:
        full = client.get(url)
        assert full.status_code == 200
        assert full.content == whole_on_disk
        assert full.headers["accept-ranges"] == "bytes"
        assert full.headers["content-type"] == "application/x-ndjson"
        assert f"dashboard.order-{finished_job.pk}.ndjson" in full.headers["content-disposition"]
        etag = full.headers["etag"]
        half = len(whole_on_disk) // 2
        first = client.get(url, headers={"Range": f"bytes=0-{half - 1}"})
        assert first.status_code == 206
        assert first.headers["etag"] == etag
        rest = client.get(url, headers={"Range": f"bytes={half}-", "If-Range": etag})
        assert rest.status_code == 206
        assert (
            rest.headers["content-range"]
            == f"bytes {half}-{len(whole_on_disk) - 1}/{len(whole_on_disk)}"
        )
        assert first.content + rest.content == whole_on_disk
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    lines = whole_on_disk.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == sorted(
        Order.objects.values_list("pk", flat=True)
    )


def test_with_redis_the_workers_progress_crosses_to_the_server_through_the_channel_layer(
    live_server_factory: Any, root_client: Client, cookie: str
) -> None:
    """With a cross-process layer the server reads job rows only every 2 s: the many
    progress events seen during a 1.5 s run can only have come through Redis."""
    from tests.support.services import redis_server

    make_orders(300)
    job = start_export(root_client)
    with redis_server() as redis_url:
        layer_env = {"REDIS_URL": redis_url}
        live = live_server_factory(env=layer_env)
        path = f"/streams/exports/{job.pk}/?format=json"
        states: list[dict[str, Any]] = []
        with (
            open_sse(live, path, cookie, timeout=30) as source,
            run_worker({**SLOW_EXPORT, **layer_env}),
        ):
            for event in source:
                states.append(orjson.loads(event.data))
                if states[-1]["status"] not in ("queued", "running"):
                    break
    assert states[-1]["status"] == "succeeded"
    assert states[-1]["done"] == 300
    running = [s["done"] for s in states if s["status"] == "running"]
    assert len(set(running)) >= 8, running


def test_a_worker_stopped_with_sigterm_requeues_its_job_and_the_next_worker_finishes_it(
    root_client: Client,
) -> None:
    make_orders(2000)
    job = start_export(root_client)
    first_task = job_state(job.pk).task_id
    with run_worker(SLOW_EXPORT) as worker:
        wait_until(lambda: job_state(job.pk).rows_done > 0)
        worker.send_signal(signal.SIGTERM)
        # The export notices at its next chunk: the worker exits without finishing it.
        worker.wait(timeout=5)
    requeued = job_state(job.pk)
    assert requeued.status == ExportJob.Status.QUEUED
    assert requeued.rows_done == 0
    assert requeued.task_id != first_task
    assert not requeued.partial_path().exists()
    assert DBTaskResult.objects.get(id=requeued.task_id).status == "READY"

    with run_worker({"STREAMBOARD_EXPORT_CHUNK_SIZE": "500"}):
        wait_until(lambda: finished(job.pk))
    done = job_state(job.pk)
    assert done.status == ExportJob.Status.SUCCEEDED
    path = done.result_path()
    assert path is not None
    ids = [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]
    assert ids == sorted(Order.objects.values_list("pk", flat=True))
