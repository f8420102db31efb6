"""An admin export chosen on the confirmation page, in headless Chromium, to its download.

Rows ticked on the changelist, the action, the confirmation page (its count,
its select-all box, CSV, one field unchecked and one moved first), then the job page followed
while a real ``db_worker`` runs the job, and the downloaded file checked
against the database: exactly the chosen columns, in the order chosen.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser

from dashboard.models import Order
from streams.exports.allow_list import get_exportable
from streams.jobs.models import ExportJob
from tests.support.browser import download_export, sign_in
from tests.support.demo_orders import make_orders
from tests.support.export_worker import export_env, run_worker
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHECKED_FIELDS = """
() => Array.from(document.querySelectorAll('#export-form input[name="fields"]'))
  .filter((box) => box.checked).map((box) => box.value)
"""
TOGGLE_STATE = """
() => {
  const toggle = document.getElementById('export-fields-toggle');
  return [toggle.checked, toggle.indeterminate];
}
"""


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    """A private export directory, shared with the worker and server subprocesses."""
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def live(live_server_factory: Callable[..., LiveServer], export_dir: Path) -> LiveServer:
    return live_server_factory(env=export_env())


def test_ticked_rows_exported_as_csv_without_one_field_download_with_exactly_the_rest(
    browser: Browser, live: LiveServer, superuser: User, tmp_path: Path
) -> None:
    make_orders(120)
    allowed = list(get_exportable("dashboard.order").fields)
    page = sign_in(browser, live, "root", "root-password")
    page.goto(live.url("/admin/dashboard/order/?status__exact=paid"))
    boxes = page.locator("input.action-select")
    for index in range(4):
        boxes.nth(index).check()
    ticked = [int(boxes.nth(index).input_value()) for index in range(4)]
    page.select_option("select[name=action]", "export_in_background")
    page.click("button[name=index]")

    # The confirmation page: the count, NDJSON and every field by default.
    page.wait_for_selector("body.export-confirmation #export-form")
    assert page.locator(".export-count").get_attribute("data-count") == "4"
    assert "The 4 selected orders" in page.inner_text(".export-count")
    assert page.locator("ol.breadcrumbs").inner_text().endswith("Export in the background")
    assert page.is_checked("input[name=format][value=ndjson]")
    assert page.evaluate(CHECKED_FIELDS) == allowed
    assert page.evaluate(TOGGLE_STATE) == [True, False]
    # Select-all clears and restores every box.
    page.uncheck("#export-fields-toggle")
    assert page.evaluate(CHECKED_FIELDS) == []
    page.check("#export-fields-toggle")
    assert page.evaluate(CHECKED_FIELDS) == allowed

    page.check("input[name=format][value=csv]")
    page.uncheck("input[name=fields][value=note]")
    assert page.evaluate(TOGGLE_STATE) == [False, True]
    # Amount moved to the front; one more "up" at the top changes nothing.
    for _ in range(allowed.index("amount") + 1):
        page.click("button[aria-label='Move Amount up']")
    chosen = ["amount", *(name for name in allowed if name not in ("amount", "note"))]
    assert page.evaluate(CHECKED_FIELDS) == chosen
    page.click("#export-form input[type=submit]")
    page.wait_for_url(re.compile(r"/exports/\d+/$"))
    job = ExportJob.objects.get()
    assert job.format == "csv"
    assert job.query == {"params": {}, "pks": sorted(ticked), "fields": chosen}

    page.wait_for_function("document.querySelector('.export-job-state') !== null")
    with run_worker():
        page.wait_for_selector(
            '.export-job-state[data-status="succeeded"] a.export-download', timeout=30_000
        )
    _, target = download_export(page, job, tmp_path)

    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == chosen
    assert len(rows) == 1 + len(ticked)
    by_pk = {order.pk: order for order in Order.objects.filter(pk__in=ticked)}
    for row in rows[1:]:
        record = dict(zip(chosen, row, strict=True))
        order = by_pk[int(record["id"])]
        assert record["reference"] == order.reference
        assert record["status"] == "paid"
        assert record["amount"] == str(order.amount)
        assert record["customer"] == str(order.customer_id)
    exported = [int(row[chosen.index("id")]) for row in rows[1:]]
    assert sorted(exported) == sorted(ticked)
    page.close()


def test_no_take_me_back_returns_to_the_filtered_changelist_and_starts_nothing(
    browser: Browser, live: LiveServer, superuser: User
) -> None:
    make_orders(180)  # 60 shipped: more than one changelist page
    page = sign_in(browser, live, "root", "root-password")
    page.goto(live.url("/admin/dashboard/order/?status__exact=shipped"))
    page.check("#action-toggle")
    page.click("text=Select all")  # "select all 60": the whole filtered list, not this page
    page.select_option("select[name=action]", "export_in_background")
    page.click("button[name=index]")
    page.wait_for_selector("#export-form")
    assert page.locator(".export-count").get_attribute("data-count") == "60"
    assert "All 60 orders of the filtered list" in page.inner_text(".export-count")
    page.click("text=No, take me back")
    page.wait_for_url(live.url("/admin/dashboard/order/?status__exact=shipped"))
    assert not ExportJob.objects.exists()
    page.close()
