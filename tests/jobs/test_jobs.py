"""Background export jobs in-process: the admin action, the stored query, the task, access."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from dashboard.models import Order
from streams.exports.producer import iter_export
from streams.exports.task import execute_job
from streams.jobs.models import EXPORT_JOBS, ExportJob, reap_stale_jobs
from tests.support.admin_export import confirm_export
from tests.support.demo_orders import make_orders

pytestmark = pytest.mark.services

CHANGELIST = "/admin/dashboard/order/"
ACTION = "export_in_background"


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    settings.STREAMBOARD_EXPORT_CHUNK_SIZE = 7
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def run_action(
    client: Client,
    capture: Callable[..., Any],
    *,
    query: str = "",
    selected: list[int],
    select_across: bool = False,
) -> ExportJob:
    with capture(execute=True) as callbacks:
        response = client.post(
            f"{CHANGELIST}{query}",
            {
                "action": ACTION,
                "index": "0",
                "select_across": "1" if select_across else "0",
                "_selected_action": [str(pk) for pk in selected],
                **confirm_export(),
            },
        )
    assert response.status_code == 302, response.content[:500]
    job = ExportJob.objects.get()
    assert response["Location"] == f"/exports/{job.pk}/"
    assert len(callbacks) == 1  # the task is enqueued only once the job is committed
    return job


def ndjson_rows(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


@pytest.mark.django_db
def test_the_action_on_a_selection_stores_the_keys_and_exports_exactly_those_rows(
    root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any], export_dir: Path
) -> None:
    orders = make_orders(30)
    chosen = [orders[2].pk, orders[5].pk, orders[17].pk]
    job = run_action(root_client, django_capture_on_commit_callbacks, selected=chosen)
    assert job.query == {"params": {}, "pks": sorted(chosen), "fields": list(job_fields())}
    assert job.status == ExportJob.Status.QUEUED
    task = DBTaskResult.objects.get()
    assert task.task_path == "streams.exports.task.run_export_job"
    assert task.args_kwargs["args"] == [job.pk]
    assert ExportJob.objects.get().task_id == str(task.id)

    assert execute_job(job.pk) == ExportJob.Status.SUCCEEDED
    job.refresh_from_db()
    assert (job.rows_done, job.rows_total) == (3, 3)
    path = job.result_path()
    assert path is not None
    assert path.parent == export_dir
    data = path.read_bytes()
    assert job.bytes_written == len(data)
    assert [row["id"] for row in ndjson_rows(data)] == sorted(chosen)
    expected = b"".join(
        chunk.data
        for chunk in iter_export(
            Order.objects.filter(pk__in=chosen), job_fields(), "ndjson", chunk_size=2
        )
    )
    assert data == expected
    assert not job.partial_path().exists()


def job_fields() -> tuple[str, ...]:
    from streams.exports.allow_list import get_exportable

    return get_exportable("dashboard.order").fields


@pytest.mark.django_db
def test_select_all_stores_the_changelist_filter_and_search_and_exports_those_rows(
    root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    make_orders(60)
    query = "?status__exact=shipped&q=ORD-0000002&o=-3&p=1"
    page = root_client.get(f"{CHANGELIST}{query}")
    assert page.status_code == 200
    shown = list(page.context["cl"].queryset.values_list("pk", flat=True))
    assert len(shown) == 3  # orders 21, 24, 27: shipped and matching the search

    job = run_action(
        root_client,
        django_capture_on_commit_callbacks,
        query=query,
        selected=shown[:1],
        select_across=True,
    )
    # The filter and search, not the keys (and not the page or ordering).
    assert job.query == {
        "params": {},
        "changelist": "status__exact=shipped&q=ORD-0000002",
        "fields": list(job_fields()),
    }

    assert execute_job(job.pk) == ExportJob.Status.SUCCEEDED
    job.refresh_from_db()
    path = job.result_path()
    assert path is not None
    rows = ndjson_rows(path.read_bytes())
    expected = Order.objects.filter(status="shipped", reference__icontains="ORD-0000002")
    assert [row["id"] for row in rows] == sorted(expected.values_list("pk", flat=True))
    assert sorted(shown) == [row["id"] for row in rows]
    assert all(row["status"] == "shipped" for row in rows)
    assert job.rows_total == 3


@pytest.mark.django_db
def test_background_and_command_line_exports_of_the_same_filter_are_identical(
    root_client: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
    tmp_path: Path,
) -> None:
    make_orders(50)
    job = run_action(
        root_client,
        django_capture_on_commit_callbacks,
        query="?status__exact=paid",
        selected=[1],
        select_across=True,
    )
    execute_job(job.pk)
    job.refresh_from_db()
    cli = tmp_path / "cli.ndjson"
    call_command(
        "export",
        "dashboard.order",
        "status=paid",
        output=str(cli),
        stderr=io.StringIO(),
    )
    path = job.result_path()
    assert path is not None
    assert path.read_bytes() == cli.read_bytes()
    assert len(cli.read_bytes().splitlines()) == Order.objects.filter(status="paid").count()


@pytest.mark.django_db
def test_a_job_cancelled_before_the_worker_starts_it_is_never_run(
    superuser: User, root_client: Client
) -> None:
    make_orders(5)
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    response = root_client.post(f"/exports/{job.pk}/cancel")
    assert response.status_code == 303
    assert execute_job(job.pk) == ExportJob.Status.CANCELLED
    job.refresh_from_db()
    assert job.rows_done == 0
    assert job.started_at is None
    assert job.result_path() is None


@pytest.mark.django_db
def test_a_failing_query_marks_the_job_failed_with_the_error_and_leaves_no_file(
    superuser: User,
) -> None:
    job = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", query={"changelist": "nonsense__x=1"}
    )
    assert execute_job(job.pk) == ExportJob.Status.FAILED
    job.refresh_from_db()
    assert job.error
    assert job.result_path() is None
    assert not job.partial_path().exists()


def running_job(user: User, heartbeat_age: float) -> ExportJob:
    """A running job started 30 s ago whose worker last reported ``heartbeat_age`` s ago."""
    now = timezone.now()
    return ExportJob.objects.create(
        user=user,
        model_label="dashboard.order",
        status=ExportJob.Status.RUNNING,
        started_at=now - timedelta(seconds=30),
        heartbeat_at=now - timedelta(seconds=heartbeat_age),
    )


@pytest.mark.django_db
@override_settings(STREAMBOARD_EXPORT_STALE_SECONDS=5)
def test_the_reaper_fails_a_running_job_without_heartbeat_and_removes_its_partial_file(
    superuser: User, export_dir: Path
) -> None:
    stale = running_job(superuser, heartbeat_age=30)
    alive = running_job(superuser, heartbeat_age=0)
    export_dir.mkdir(parents=True)
    stale.partial_path().write_bytes(b'{"id": 1}\n{"id"')
    assert reap_stale_jobs() == [stale.pk]
    stale.refresh_from_db()
    alive.refresh_from_db()
    assert stale.status == ExportJob.Status.FAILED
    assert "stopped responding" in stale.error
    assert not stale.partial_path().exists()
    assert alive.status == ExportJob.Status.RUNNING


@pytest.mark.django_db(transaction=True)  # streams read the session in a shared thread
def test_another_users_job_is_a_404_on_every_page_and_stream(
    superuser: User, staff_client: Client, root_client: Client
) -> None:
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    for url in (
        f"/exports/{job.pk}/",
        f"/exports/{job.pk}/download",
        f"/streams/exports/{job.pk}/",
    ):
        assert staff_client.get(url).status_code == 404, url
    assert staff_client.post(f"/exports/{job.pk}/cancel").status_code == 404
    job.refresh_from_db()
    assert job.status == ExportJob.Status.QUEUED
    listing = staff_client.get("/exports/")
    assert listing.status_code == 200
    assert f"job-{job.pk}" not in listing.content.decode()
    # The superuser sees everyone's jobs.
    assert f'id="job-{job.pk}"' in root_client.get("/exports/").content.decode()
    assert root_client.get(f"/exports/{job.pk}/").status_code == 200


@pytest.mark.django_db
def test_anonymous_users_get_403_on_streams_and_a_login_redirect_on_pages(
    anonymous_client: Client, superuser: User
) -> None:
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    for url in ("/streams/exports/", f"/streams/exports/{job.pk}/"):
        assert anonymous_client.get(url).status_code == 403, url
    for url in ("/exports/", f"/exports/{job.pk}/", f"/exports/{job.pk}/download"):
        response = anonymous_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_cancel_needs_a_csrf_token(superuser: User) -> None:
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    assert client.post(f"/exports/{job.pk}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.status == ExportJob.Status.QUEUED
    page = client.get(f"/exports/{job.pk}/")
    token = page.cookies["csrftoken"].value
    response = client.post(f"/exports/{job.pk}/cancel", {"csrfmiddlewaretoken": token})
    assert response.status_code == 303
    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED


@pytest.mark.django_db
def test_only_a_finished_job_offers_a_download(superuser: User, root_client: Client) -> None:
    job = ExportJob.objects.create(
        user=superuser,
        model_label="dashboard.order",
        status=ExportJob.Status.RUNNING,
        heartbeat_at=timezone.now(),
    )
    job.partial_path().parent.mkdir(parents=True, exist_ok=True)
    job.partial_path().write_bytes(b"partial\n")
    assert root_client.get(f"/exports/{job.pk}/download").status_code == 404
    assert "export-download" not in root_client.get(f"/exports/{job.pk}/").content.decode()


@pytest.mark.django_db
def test_deleting_a_finished_job_removes_its_file(superuser: User) -> None:
    make_orders(3)
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    assert execute_job(job.pk) == ExportJob.Status.SUCCEEDED
    job.refresh_from_db()
    path = job.result_path()
    assert path is not None
    assert path.exists()
    job.delete()
    assert not path.exists()


@pytest.mark.django_db
def test_a_job_whose_user_may_not_view_the_model_fails_without_exporting(
    staff_user: User,
) -> None:
    make_orders(3)
    job = ExportJob.objects.create(user=staff_user, model_label="dashboard.order", query={})
    assert execute_job(job.pk) == ExportJob.Status.FAILED
    job.refresh_from_db()
    assert "may not view dashboard.order" in job.error
    assert job.rows_done == 0
    assert job.result_path() is None


@pytest.mark.django_db
def test_every_exportable_model_admin_offers_the_action_and_others_do_not(
    root_client: Client,
) -> None:
    make_orders(1)  # the admin shows actions only above a non-empty list
    for url in ("/admin/dashboard/order/", "/admin/dashboard/customer/", "/admin/auth/user/"):
        page = root_client.get(url)
        assert page.status_code == 200
        assert f'value="{ACTION}"' in page.content.decode(), url
    groups = root_client.get("/admin/auth/group/")
    assert f'value="{ACTION}"' not in groups.content.decode()


@pytest.mark.django_db
def test_the_export_job_admin_lists_jobs_read_only(superuser: User, root_client: Client) -> None:
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    listing = root_client.get("/admin/streams/exportjob/")
    assert listing.status_code == 200
    assert f'href="/exports/{job.pk}/"' in listing.content.decode()
    assert root_client.get("/admin/streams/exportjob/add/").status_code == 403
    assert root_client.get(f"/admin/streams/exportjob/{job.pk}/change/").status_code == 200


@pytest.mark.django_db(transaction=True)  # streams read the session in a shared thread
def test_an_unknown_stream_format_is_a_400(superuser: User, root_client: Client) -> None:
    job = ExportJob.objects.create(user=superuser, model_label="dashboard.order", query={})
    for url in ("/streams/exports/?format=xml", f"/streams/exports/{job.pk}/?format=xml"):
        response = root_client.get(url)
        assert response.status_code == 400, url
        assert response.content == b"format: must be html or json\n"


@pytest.mark.django_db
def test_progress_is_saved_at_most_once_per_interval_and_a_cancel_stops_the_reporter(
    superuser: User, settings: Any
) -> None:
    from streams.jobs.progress import JobStopped, ProgressReporter

    settings.STREAMBOARD_EXPORT_PROGRESS_SECONDS = 0.1
    job = ExportJob.objects.create(
        user=superuser,
        model_label="dashboard.order",
        status=ExportJob.Status.RUNNING,
        rows_total=100,
        heartbeat_at=timezone.now() - timedelta(seconds=5),
    )
    now = [1000.0]
    reporter = ProgressReporter(
        job, EXPORT_JOBS, ("rows_done", "bytes_written"), clock=lambda: now[0]
    )

    def update(rows: int, written: int) -> None:
        job.rows_done += rows
        job.bytes_written += written
        reporter.tick()

    update(10, 100)
    now[0] += 0.05
    update(10, 100)
    saved = ExportJob.objects.get(pk=job.pk)
    assert saved.rows_done == 0  # within the interval: nothing written yet
    now[0] += 0.06
    update(5, 50)
    saved = ExportJob.objects.get(pk=job.pk)
    assert (saved.rows_done, saved.bytes_written) == (25, 250)
    assert saved.heartbeat_at is not None
    assert saved.heartbeat_at > timezone.now() - timedelta(seconds=1)

    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.CANCELLED)
    now[0] += 0.2
    with pytest.raises(JobStopped):
        update(1, 10)
    assert ExportJob.objects.get(pk=job.pk).rows_done == 25


@pytest.mark.django_db
@override_settings(STREAMBOARD_EXPORT_STALE_SECONDS=5)
def test_the_export_job_admin_shows_a_killed_workers_job_as_failed(
    superuser: User, root_client: Client
) -> None:
    stale = running_job(superuser, heartbeat_age=30)
    page = root_client.get("/admin/streams/exportjob/")
    assert page.status_code == 200
    stale.refresh_from_db()
    assert stale.status == ExportJob.Status.FAILED
