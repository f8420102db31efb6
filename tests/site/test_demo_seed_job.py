"""Seeding as a tracked job: the task's progress and result, its idempotent start, its cancel.

``make run`` starts ``dashboard.tasks.seed_demo_orders`` through ``manage.py
start_demo_seed`` (``scripts/run_demo.py``, whose own end-to-end test is
``test_run_demo.py``); the rows themselves are ``test_seed_demo.py``'s.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django_tasks_db.models import DBTaskResult

from dashboard.models import Order
from dashboard.tasks import SEED_KIND, seed_demo_orders, start_seeding
from streams.jobs.models import Job, JobStatus
from streams.jobs.tracking import cancel
from tests.support.export_worker import run_worker
from tests.support.wait import wait_until

pytestmark = pytest.mark.services


def order_indexes() -> list[str]:
    with connection.cursor() as cursor:
        table = Order._meta.db_table
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s", [table]
            )
        else:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        return sorted(row[0] for row in cursor.fetchall())


def start_command(**options: Any) -> str:
    out = io.StringIO()
    call_command("start_demo_seed", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.mark.django_db
def test_the_seed_job_reports_orders_steps_and_a_result(
    superuser: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = start_seeding(250, batch=100, user=superuser)
    assert job is not None
    assert (job.kind, job.unit, job.user, job.args) == (SEED_KIND, "orders", superuser, [250, 100])
    task = DBTaskResult.objects.get(id=Job.objects.get(pk=job.pk).task_id)
    assert task.args_kwargs == {"args": [job.pk, 250, 100], "kwargs": {}}

    assert seed_demo_orders.call(job.pk, 250, 100) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert Order.objects.count() == 250
    assert (job.done, job.total, job.percent) == (250, 250, 100)
    assert [step["name"] for step in job.steps] == [
        "counting orders",
        "inserting orders",
        "finishing",
    ]
    assert [step["done"] for step in job.steps] == [0, 0, 250]
    assert job.result_summary == "inserted 250 orders; 250 in total"
    assert job.result_url == "/admin/dashboard/order/"


@pytest.mark.django_db
def test_a_second_start_with_the_orders_there_starts_nothing(superuser: User) -> None:
    job = start_seeding(120, batch=50, user=superuser)
    assert job is not None
    assert seed_demo_orders.call(job.pk, 120, 50) == JobStatus.SUCCEEDED
    assert start_seeding(120, user=superuser) is None
    assert start_seeding(100, user=superuser) is None
    out = start_command(rows=120, username="root")
    assert out == "start_demo_seed: 120 orders or more already, nothing to do.\n"
    assert Job.objects.count() == 1
    # More orders wanted: a new job, which tops up only the missing ones.
    more = start_seeding(150, batch=50, user=superuser)
    assert more is not None
    assert more.pk != job.pk
    assert seed_demo_orders.call(more.pk, 150, 50) == JobStatus.SUCCEEDED
    more.refresh_from_db()
    assert (more.done, more.total, Order.objects.count()) == (30, 30, 150)


@pytest.mark.django_db
def test_a_seed_under_way_is_not_started_twice(superuser: User) -> None:
    out = start_command(rows=100, username="root")
    queued = Job.objects.get()
    assert out == f"start_demo_seed: job #{queued.pk} seeds the demo orders (/jobs/{queued.pk}/).\n"
    assert start_seeding(100, user=superuser) == queued
    assert start_command(rows=100, username="root") == out
    assert Job.objects.count() == 1
    # Once that one ended without seeding (cancelled), the next start is a new job.
    cancel(queued)
    again = start_seeding(100, user=superuser)
    assert again is not None
    assert again.pk != queued.pk


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_user_and_bad_numbers(superuser: User) -> None:
    with pytest.raises(CommandError, match="No user 'nobody'"):
        start_command(rows=10, username="nobody")
    with pytest.raises(CommandError, match="--rows"):
        start_command(rows=-1, username="root")
    assert not Job.objects.exists()


@pytest.mark.live
def test_a_cancelled_seed_stops_between_batches_keeps_them_and_rebuilds_its_indexes(
    transactional_db: None, superuser: User
) -> None:
    indexes = order_indexes()
    job = start_seeding(5_000, batch=100, user=superuser)
    assert job is not None
    paced = {"STREAMBOARD_JOB_CHUNK_DELAY": "0.1", "STREAMBOARD_EXPORT_PROGRESS_SECONDS": "0.01"}
    with run_worker(paced):
        wait_until(lambda: Job.objects.get(pk=job.pk).done >= 300, timeout=60, what="300 seeded")
        assert cancel(job)
        task_id = Job.objects.get(pk=job.pk).task_id
        wait_until(
            lambda: DBTaskResult.objects.get(id=task_id).finished_at is not None,
            timeout=30,
            what="the seed's task ended",
        )
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    seeded = Order.objects.count()
    assert 300 <= seeded < 5_000
    assert seeded % 100 == 0  # whole committed batches, nothing half-written
    assert seeded - job.done <= 100  # it stopped at the first save after the cancel
    assert order_indexes() == indexes  # a first seed's set-aside indexes were rebuilt
    name = Path(str(connection.settings_dict["NAME"]))
    assert not list(name.parent.glob(f"{name.name}.seed-indexes.json"))
