"""The demo's tracked tasks, the progress API's own examples (``streams.jobs.tracking``).

* ``seed_demo_orders``: ``make run``'s seeding of the demo orders, in the
  worker (``manage.py start_demo_seed`` starts it), so its bar shows on the
  overview while the first pages are already served. It only wraps
  ``dashboard.demo_data.seed_orders``, feeding its ``on_progress`` callback
  to the ``Progress``: a cancel (or the worker's shutdown) raises out of the
  callback, between two committed batches, and ``seed_orders``' own cleanup
  runs as for Ctrl-C.
* ``recompute_customer_summary``: a per-customer summary over the orders: a
  total in its own unit (customers), two steps, cancel honoured between
  chunks, and a short summary as its result. Started from ``/jobs/`` or the
  admin.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Sum
from django.tasks import task
from django.urls import reverse

from dashboard.demo_data import BATCH, seed_orders, set_aside_file
from dashboard.models import Customer, Order
from streams import conf
from streams.jobs.liveness import reap_all
from streams.jobs.models import ACTIVE_STATUSES, Job
from streams.jobs.tracking import Progress, tracked
from streams.jobs.tracking import start as start_job

SEED_KIND = "demo.seed"

CHUNK = 50  # 20 chunks for the 1,000 demo customers: a bar that visibly moves


@task()
@tracked(kind=SEED_KIND, unit="orders")
def seed_demo_orders(progress: Progress, rows: int, batch: int = BATCH) -> str:
    """Top the demo orders up to ``rows``, one committed batch at a time, as a bar."""
    progress.step("counting orders")
    delay = conf.job_chunk_delay()

    def on_progress(done: int, total: int) -> None:
        if done == 0:
            progress.total = total
            progress.step("inserting orders")
        progress.done = done  # saves when due: raises JobStopped once cancelled
        if done == total:
            progress.step("finishing")  # a first seed builds its indexes after the last batch
        elif delay:
            time.sleep(delay)  # a demo's or test's pacing, so the bar can be watched

    inserted = seed_orders(rows, batch=batch, on_progress=on_progress)
    if not inserted:
        progress.total = 0
    progress.result(
        url=reverse("admin:dashboard_order_changelist"),
        summary=f"inserted {inserted:,} orders; {Order.objects.count():,} in total",
    )
    return "seeded"


def seeding_needed(rows: int) -> bool:
    """Whether a seed to ``rows`` has anything to do (orders missing, or indexes to rebuild)."""
    pending = set_aside_file(connection)
    return Order.objects.count() < rows or (pending is not None and pending.exists())


def start_seeding(rows: int, *, batch: int = BATCH, user: Any = None) -> Job | None:
    """The seed's job: a new one, the one already under way, or None when nothing is missing.

    Idempotent, so ``make run`` calls it on every start: with the orders
    there it starts nothing; with a seed queued or running (say one put back
    in the queue when the last ``make run`` stopped its worker) it returns
    that one, and the worker carries on with it. A seed whose worker was
    killed outright is reaped first, so it does not block a new one.
    """
    if not seeding_needed(rows):
        return None
    reap_all()
    active = Job.objects.filter(kind=SEED_KIND, status__in=ACTIVE_STATUSES).order_by("pk").first()
    return active or start_job(seed_demo_orders, rows, batch, user=user)


@task()
@tracked(kind="demo.customer-summary", unit="customers")
def recompute_customer_summary(progress: Progress) -> str:
    """Orders and revenue per customer, a chunk of customers at a time."""
    progress.step("counting customers")
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    progress.total = len(ids)
    progress.step("summing orders")
    best: tuple[Decimal, str] = (Decimal(0), "")
    delay = conf.job_chunk_delay()
    orders = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = (
            Order.objects.filter(customer_id__in=chunk)
            .values("customer_id", "customer__name")
            .annotate(count=Count("pk"), revenue=Sum("amount"))
        )
        for row in rows:
            orders += row["count"]
            best = max(best, (row["revenue"] or Decimal(0), row["customer__name"]))
        progress.advance(len(chunk))
        if delay:
            time.sleep(delay)  # a demo's or test's pacing, so the bar can be watched
    progress.result(
        url=reverse("admin:dashboard_customer_changelist"),
        summary=f"{len(ids):,} customers, {orders:,} orders; top customer {best[1]} ({best[0]:,})",
    )
    return "summarised"
