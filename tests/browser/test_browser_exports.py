"""A background export driven from the admin in headless Chromium, watched to its download."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser

from dashboard.models import Order
from streams.jobs.models import ExportJob
from tests.support.admin_export import confirm_export
from tests.support.browser import download_export, sign_in, start_admin_export
from tests.support.demo_orders import make_orders
from tests.support.export_worker import export_env, run_worker
from tests.support.live import LiveServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    """A private export directory, shared with the worker and server subprocesses."""
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def live(live_server_factory: Callable[..., LiveServer], export_dir: Path) -> LiveServer:
    return live_server_factory(env=export_env())


# 50 rows (one changelist page) in chunks of 5, paced: about ten visible steps.
PACED = {
    "STREAMBOARD_EXPORT_CHUNK_SIZE": "5",
    "STREAMBOARD_EXPORT_CHUNK_DELAY": "0.1",
    "STREAMBOARD_EXPORT_PROGRESS_SECONDS": "0.05",
}

RECORD_PERCENTS = """
() => {
  window.seenPercents = [];
  window.seenTexts = [];
  const record = () => {
    const state = document.querySelector('.export-job-state');
    if (!state) return;
    window.seenPercents.push(Number(state.dataset.percent));
    window.seenTexts.push(state.querySelector('.progress-text').textContent);
  };
  record();
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true});
}
"""


def test_admin_action_bar_reaches_100_percent_becomes_a_link_and_the_file_matches(
    browser: Browser, live: LiveServer, superuser: User, tmp_path: Path
) -> None:
    make_orders(120)
    page = sign_in(browser, live, "root", "root-password")
    job = start_admin_export(page, live, every_order=False)  # the 50 newest orders
    page.wait_for_function("document.querySelector('.export-job-state') !== null")
    page.evaluate(RECORD_PERCENTS)
    # The page's EventSource is connected before the worker starts: no reload from here on.
    with run_worker(PACED):
        link = page.wait_for_selector(
            '.export-job-state[data-status="succeeded"] a.export-download', timeout=30_000
        )
        assert link is not None
    percents = page.evaluate("window.seenPercents")
    assert percents[-1] == 100
    assert any(0 < p < 100 for p in percents), percents  # the bar moved on the way
    assert percents == sorted(percents)
    texts = page.evaluate("window.seenTexts")
    assert any("rows/s" in text and "ETA" in text and "%" in text for text in texts), texts
    assert page.locator(".progress").get_attribute("aria-valuenow") == "100"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

    _, target = download_export(page, job, tmp_path)

    expected = list(Order.objects.order_by("-pk").values_list("pk", flat=True)[:50])
    lines = target.read_bytes().split(b"\n")
    assert lines[-1] == b""  # newline-terminated
    rows = [orjson.loads(line) for line in lines[:-1]]
    assert [row["id"] for row in rows] == sorted(expected)
    for row in rows:
        order = Order.objects.get(pk=row["id"])
        assert row["reference"] == order.reference
        assert row["customer"] == order.customer_id
        assert row["status"] == order.status
        assert row["quantity"] == order.quantity
        assert Decimal(row["amount"]) == order.amount
        assert row["note"] == order.note
        assert row["placed_on"] == order.placed_on.isoformat()
        assert row["is_gift"] == order.is_gift
        assert row["metadata"] == order.metadata
        assert uuid.UUID(row["uuid"]) == order.uuid
    page.close()


def test_the_cancel_button_stops_a_running_export_and_the_bar_says_cancelled(
    browser: Browser, live: LiveServer, superuser: User
) -> None:
    make_orders(2000)
    page = sign_in(browser, live, "root", "root-password")
    page.goto(live.url("/admin/dashboard/order/"))
    page.check("#action-toggle")
    page.click("text=Select all")  # "select all 2000": the stored changelist, not keys
    page.select_option("select[name=action]", "export_in_background")
    page.click("button[name=index]")
    page.click("#export-form input[type=submit]")  # the confirmation page's defaults
    page.wait_for_url(re.compile(r"/exports/\d+/$"))
    job = ExportJob.objects.get()
    assert "changelist" in job.query
    with run_worker(PACED):
        page.wait_for_selector('.export-job-state[data-status="running"] button.export-cancel')
        page.wait_for_function(
            "Number(document.querySelector('.export-job-state').dataset.done) > 0"
        )
        page.click("button.export-cancel")  # hx-post with the page's CSRF header
        page.wait_for_selector('.export-job-state[data-status="cancelled"]')
        wait_until(lambda: not job.partial_path().exists(), timeout=1.0)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED
    assert 0 < job.rows_done < 2000
    assert page.locator("a.export-download").count() == 0
    page.close()


def test_a_job_started_after_the_list_page_loaded_appears_on_it_and_finishes_there(
    browser: Browser, live: LiveServer, superuser: User
) -> None:
    make_orders(60)
    page = sign_in(browser, live, "root", "root-password")
    page.goto(live.url("/exports/"))
    page.wait_for_selector("text=No exports yet.")
    # Wait until the page's EventSource has its first message (the empty list state
    # arrives only with a job), i.e. until it is connected: htmx marks that with
    # an open EventSource on the sse-connect element.
    page.wait_for_function(
        "document.querySelector('[sse-connect]')['htmx-internal-data']"
        "?.sseEventSource?.readyState === 1"
    )

    def start_export() -> int:
        try:
            return post_export()
        finally:
            connections.close_all()  # this thread's own connection

    def post_export() -> int:
        client = Client()
        client.force_login(superuser)
        response = client.post(
            "/admin/dashboard/order/",
            {
                "action": "export_in_background",
                "index": "0",
                "select_across": "1",
                "_selected_action": ["1"],
                **confirm_export(),
            },
        )
        return response.status_code

    # In a thread of its own: Playwright's event loop runs in this one, and the
    # action publishes the new job through async_to_sync, which refuses a thread
    # with a running loop.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(start_export).result(timeout=30) == 302
    job = ExportJob.objects.get()
    with run_worker(PACED):
        page.wait_for_selector(
            f'#job-{job.pk} .export-job-state[data-status="succeeded"] a.export-download',
            timeout=30_000,
        )
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.locator(".export-job").count() == 1
    page.close()
