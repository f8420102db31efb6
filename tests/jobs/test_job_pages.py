"""The tracked-job pages and streams in-process: access, filters, cancel, retry, start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from dashboard.tasks import recompute_customer_summary
from streams.jobs.models import ExportJob, Job, JobStatus
from tests.support.tracked_tasks import count_widgets

pytestmark = pytest.mark.services


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def make_job(user: User | None, kind: str = "test.widgets", **fields: Any) -> Job:
    return Job.objects.create(
        kind=kind, task_path=count_widgets.module_path, user=user, args=[2, 0], **fields
    )


@pytest.mark.django_db
def test_a_user_sees_only_their_own_jobs_and_a_superuser_all(
    superuser: User, staff_user: User, staff_client: Client, root_client: Client
) -> None:
    mine = make_job(staff_user)
    theirs = make_job(superuser)
    listing = staff_client.get("/jobs/").content.decode()
    assert f'id="job-{mine.pk}"' in listing
    assert f'id="job-{theirs.pk}"' not in listing
    everything = root_client.get("/jobs/").content.decode()
    assert f'id="job-{mine.pk}"' in everything
    assert f'id="job-{theirs.pk}"' in everything
    assert 'sse-connect="/streams/jobs/"' in everything


@pytest.mark.django_db(transaction=True)  # streams read the session in a shared thread
def test_another_users_job_is_a_404_on_its_page_stream_cancel_and_retry(
    superuser: User, staff_client: Client
) -> None:
    job = make_job(superuser)
    assert staff_client.get(f"/jobs/{job.pk}/").status_code == 404
    assert staff_client.get(f"/streams/jobs/{job.pk}/").status_code == 404
    assert staff_client.post(f"/jobs/{job.pk}/cancel").status_code == 404
    assert staff_client.post(f"/jobs/{job.pk}/retry").status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert not Job.objects.filter(retry_of=job).exists()


@pytest.mark.django_db
def test_anonymous_users_get_a_login_redirect_on_pages_and_403_on_streams(
    anonymous_client: Client, superuser: User
) -> None:
    job = make_job(superuser)
    for url in ("/jobs/", f"/jobs/{job.pk}/"):
        response = anonymous_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")
    for url in ("/streams/jobs/", f"/streams/jobs/{job.pk}/"):
        assert anonymous_client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_the_list_filters_by_kind_and_status(superuser: User, root_client: Client) -> None:
    widgets = make_job(superuser)
    summary = make_job(superuser, kind="demo.customer-summary", status=JobStatus.FAILED)
    by_kind = root_client.get("/jobs/?kind=demo.customer-summary").content.decode()
    assert f'id="job-{summary.pk}"' in by_kind
    assert f'id="job-{widgets.pk}"' not in by_kind
    assert 'sse-connect="/streams/jobs/?kind=demo.customer-summary"' in by_kind
    by_status = root_client.get("/jobs/?status=queued").content.decode()
    assert f'id="job-{widgets.pk}"' in by_status
    assert f'id="job-{summary.pk}"' not in by_status
    # Both kinds are offered in the filter, whatever is shown.
    assert '<option value="demo.customer-summary" selected>' in by_kind
    assert '<option value="test.widgets">' in by_kind


@pytest.mark.django_db(transaction=True)
def test_bad_filters_and_formats_are_a_400_naming_the_parameter(
    superuser: User, root_client: Client
) -> None:
    job = make_job(superuser)
    page = root_client.get("/jobs/?status=sleeping")
    assert page.status_code == 400
    assert page.content.startswith(b"status: ")
    for url, name in (
        ("/streams/jobs/?status=sleeping", b"status"),
        ("/streams/jobs/?format=xml", b"format"),
        (f"/streams/jobs/{job.pk}/?format=xml", b"format"),
    ):
        response = root_client.get(url)
        assert response.status_code == 400, url
        assert response.content.startswith(name + b": "), response.content


@pytest.mark.django_db
def test_cancel_answers_htmx_with_204_and_a_form_with_a_redirect(
    superuser: User, root_client: Client
) -> None:
    first, second = make_job(superuser), make_job(superuser, status=JobStatus.RUNNING)
    response = root_client.post(f"/jobs/{first.pk}/cancel", headers={"HX-Request": "true"})
    assert response.status_code == 204
    response = root_client.post(f"/jobs/{second.pk}/cancel")
    assert (response.status_code, response["Location"]) == (303, f"/jobs/{second.pk}/")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.CANCELLED}


@pytest.mark.django_db
def test_retry_links_a_new_job_and_sends_the_browser_to_it(
    superuser: User, root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    failed = make_job(superuser, status=JobStatus.FAILED, error="RuntimeError: boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post(f"/jobs/{failed.pk}/retry", headers={"HX-Request": "true"})
    again = Job.objects.get(retry_of=failed)
    assert response["HX-Redirect"] == f"/jobs/{again.pk}/"
    assert again.task_id
    page = root_client.get(f"/jobs/{again.pk}/").content.decode()
    assert f'href="/jobs/{failed.pk}/"' in page  # "retry of"
    old = root_client.get(f"/jobs/{failed.pk}/").content.decode()
    assert f'href="/jobs/{again.pk}/"' in old  # "retried as"
    assert "Failed: RuntimeError: boom" in old


@pytest.mark.django_db
def test_a_jobs_page_shows_its_steps_rate_in_its_unit_and_result(
    superuser: User, root_client: Client
) -> None:
    now = timezone.now()
    job = make_job(
        superuser,
        status=JobStatus.SUCCEEDED,
        done=1200,
        total=1200,
        unit="widgets",
        started_at=now - timedelta(seconds=10),
        finished_at=now,
        steps=[
            {"name": "counting", "at": (now - timedelta(seconds=10)).isoformat()},
            {"name": "polishing", "at": (now - timedelta(seconds=4)).isoformat()},
        ],
        result_url="/admin/",
        result_summary="1200 widgets counted",
    )
    page = root_client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'sse-connect="/streams/jobs/' in page
    assert "1,200 / 1,200 widgets" in page
    assert "120 widgets/s" in page
    assert "counting <span" in page
    assert "· 6.0 s</span>" in page
    assert "polishing <span" in page
    assert "· 4.0 s</span>" in page
    assert "1200 widgets counted" in page
    assert '<a class="job-result-link" href="/admin/">' in page
    assert 'class="job-retry"' in page


@pytest.mark.django_db
def test_the_demo_task_is_started_from_the_jobs_page(
    superuser: User, root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post("/jobs/start/customer-summary")
    job = Job.objects.get()
    assert (response.status_code, response["Location"]) == (303, f"/jobs/{job.pk}/")
    assert (job.kind, job.unit, job.user) == ("demo.customer-summary", "customers", superuser)
    assert job.task_path == recompute_customer_summary.module_path
    assert recompute_customer_summary.call(job.pk) == "succeeded"
    job.refresh_from_db()
    assert [step["name"] for step in job.steps] == ["counting customers", "summing orders"]
    assert job.result_summary.startswith("0 customers")


@pytest.mark.django_db
def test_exports_are_listed_as_a_kind_among_the_others(
    superuser: User, root_client: Client
) -> None:
    export = ExportJob.objects.create(user=superuser, model_label="dashboard.order")
    widgets = make_job(superuser)
    everything = root_client.get("/jobs/").content.decode()
    assert f'id="export-{export.pk}"' in everything
    assert f'sse-swap="export-{export.pk}"' in everything
    assert f'id="job-{widgets.pk}"' in everything
    assert '<option value="export">' in everything
    only_exports = root_client.get("/jobs/?kind=export").content.decode()
    assert f'id="export-{export.pk}"' in only_exports
    assert f'id="job-{widgets.pk}"' not in only_exports
    only_widgets = root_client.get("/jobs/?kind=test.widgets").content.decode()
    assert f'id="export-{export.pk}"' not in only_widgets
    finished = root_client.get("/jobs/?status=succeeded").content.decode()
    assert f'id="export-{export.pk}"' not in finished


@pytest.mark.django_db
def test_the_overview_shows_running_jobs_and_the_last_days_failures(
    superuser: User, root_client: Client
) -> None:
    now = timezone.now()
    running = make_job(superuser, status=JobStatus.RUNNING)
    failed = make_job(superuser, status=JobStatus.FAILED, finished_at=now, error="boom")
    old_failure = make_job(superuser, status=JobStatus.FAILED, finished_at=now - timedelta(days=2))
    succeeded = make_job(superuser, status=JobStatus.SUCCEEDED, finished_at=now)
    export = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", status=ExportJob.Status.RUNNING
    )
    page = root_client.get("/").content.decode()
    assert f'id="job-{running.pk}"' in page
    assert f'id="job-{failed.pk}"' in page
    assert "Failed: boom" in page
    assert f'id="job-{old_failure.pk}"' not in page
    assert f'id="job-{succeeded.pk}"' not in page
    assert f'id="export-{export.pk}"' in page
    assert 'sse-swap="jobs"' in page
    assert 'sse-swap="exports"' in page
