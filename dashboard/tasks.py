"""The demo's second kind of tracked task: a per-customer summary over the orders.

It is the progress API's own example (``streams.jobs.tracking``): a total in
its own unit (customers), two steps, cancel honoured between chunks, and a
short summary as its result. Started from ``/jobs/`` or the admin.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.db.models import Count, Sum
from django.tasks import task
from django.urls import reverse

from dashboard.models import Customer, Order
from streams import conf
from streams.jobs.tracking import Progress, tracked

CHUNK = 50  # 20 chunks for the 1,000 demo customers: a bar that visibly moves


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
