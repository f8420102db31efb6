"""Retrying an export: the same model, query (fields and their order) and format, as a new job."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_tasks_db.models import DBTaskResult

from streams.exports.task import execute_job
from streams.jobs.models import ExportJob
from tests.support.demo_orders import make_orders

pytestmark = pytest.mark.services

FIELDS = ["amount", "id", "reference"]


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def ended_export(user: User, status: str = ExportJob.Status.FAILED, **fields: Any) -> ExportJob:
    pks = [order.pk for order in make_orders(3)]
    return ExportJob.objects.create(
        user=user,
        model_label="dashboard.order",
        query={"params": {}, "pks": pks, "fields": FIELDS},
        format="csv",
        status=status,
        error="RuntimeError: the disk was full" if status == ExportJob.Status.FAILED else "",
        **fields,
    )


@pytest.mark.django_db
def test_retry_from_the_page_exports_the_same_query_fields_and_format_as_a_new_job(
    superuser: User,
    root_client: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    failed = ended_export(superuser)
    page = root_client.get(f"/exports/{failed.pk}/").content.decode()
    assert f'hx-post="/exports/{failed.pk}/retry"' in page
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root_client.post(f"/exports/{failed.pk}/retry")
    again = ExportJob.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 303
    assert response["Location"] == f"/exports/{again.pk}/"
    assert len(callbacks) == 1  # enqueued once the new job is committed
    assert (again.model_label, again.query, again.format) == (
        failed.model_label,
        failed.query,
        "csv",
    )
    assert (again.status, again.user) == (ExportJob.Status.QUEUED, superuser)
    task = DBTaskResult.objects.get()
    assert (task.args_kwargs["args"], str(task.id)) == ([again.pk], again.task_id)
    failed.refresh_from_db()
    assert failed.status == ExportJob.Status.FAILED  # the old job stays as it ended
    # Linked both ways: the new job names the old one, and its page links to it.
    assert again.retry_of == failed
    assert list(failed.retries.all()) == [again]
    new_page = root_client.get(f"/exports/{again.pk}/").content.decode()
    assert f'<dt>Retry of</dt><dd><a href="/exports/{failed.pk}/">#{failed.pk}</a>' in new_page

    assert execute_job(again.pk) == ExportJob.Status.SUCCEEDED
    again.refresh_from_db()
    path = again.result_path()
    assert path is not None
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == FIELDS
    assert sorted(int(row[1]) for row in rows[1:]) == failed.query["pks"]


@pytest.mark.django_db
def test_an_htmx_retry_redirects_the_browser_to_the_new_jobs_page(
    superuser: User, root_client: Client
) -> None:
    cancelled = ended_export(superuser, ExportJob.Status.CANCELLED)
    response = root_client.post(f"/exports/{cancelled.pk}/retry", headers={"HX-Request": "true"})
    again = ExportJob.objects.exclude(pk=cancelled.pk).get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/exports/{again.pk}/"


@pytest.mark.django_db
def test_a_running_export_is_not_retried_and_only_ended_ones_offer_the_button(
    superuser: User, root_client: Client
) -> None:
    running = ended_export(superuser, ExportJob.Status.RUNNING)
    response = root_client.post(f"/exports/{running.pk}/retry")
    assert response.status_code == 409
    assert b"still running" in response.content
    assert ExportJob.objects.count() == 1
    assert "/retry" not in root_client.get(f"/exports/{running.pk}/").content.decode()
    done = ended_export(superuser, ExportJob.Status.SUCCEEDED)
    assert "/retry" not in root_client.get(f"/exports/{done.pk}/").content.decode()
    assert root_client.get(f"/exports/{running.pk}/retry").status_code == 405


@pytest.mark.django_db
def test_another_users_export_is_a_404_and_no_job(superuser: User, staff_client: Client) -> None:
    failed = ended_export(superuser)
    assert staff_client.post(f"/exports/{failed.pk}/retry").status_code == 404
    assert ExportJob.objects.count() == 1


@pytest.mark.django_db
def test_the_admin_retries_the_ended_exports_and_skips_the_active_ones(
    superuser: User,
    root_client: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    failed = ended_export(superuser)
    queued = ended_export(superuser, ExportJob.Status.QUEUED)
    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post(
            "/admin/streams/exportjob/",
            {
                "action": "retry_exports",
                "index": "0",
                "_selected_action": [str(failed.pk), str(queued.pk)],
            },
            follow=True,
        )
    again = ExportJob.objects.exclude(pk__in=[failed.pk, queued.pk]).get()
    assert f"Retried as #{again.pk}." in response.content.decode()
    assert (again.query, again.format, again.status) == (failed.query, "csv", "queued")
    assert again.task_id
