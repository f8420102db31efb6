"""The demo's tracked task in headless Chromium: started, watched, cancelled, retried, noticed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser

from dashboard.models import Customer
from streams.jobs.models import Job, JobStatus
from tests.support.browser import sign_in
from tests.support.demo_orders import make_customer, make_orders
from tests.support.export_worker import run_worker
from tests.support.live import LiveServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live]

# 600 customers in chunks of 50, paced: twelve visible steps over ~2.4 s.
PACED = {"STREAMBOARD_JOB_CHUNK_DELAY": "0.2", "STREAMBOARD_EXPORT_PROGRESS_SECONDS": "0.05"}

RECORD = """
() => {
  window.seen = [];
  const record = () => {
    const state = document.querySelector('.tracked-job-state');
    if (state) window.seen.push([state.dataset.status, Number(state.dataset.done)]);
  };
  record();
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true});
}
"""


@pytest.fixture
def live(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory()


def test_start_watch_cancel_and_retry_the_customer_summary_with_a_notice_elsewhere(
    browser: Browser, live: LiveServer, superuser: User
) -> None:
    make_orders(10)
    for n in range(599):
        make_customer(name=f"Customer {n}")
    assert Customer.objects.count() == 600
    overview = sign_in(browser, live, "root", "root-password")
    overview.goto(live.url("/"))
    page = sign_in(browser, live, "root", "root-password")
    page.goto(live.url("/jobs/"))
    page.click("form.job-start button")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    assert job.kind == "demo.customer-summary"
    page.wait_for_selector(".tracked-job-state[data-status=queued]")
    page.evaluate(RECORD)

    with run_worker(PACED):
        # The bar moves in customers, then Cancel stops it.
        page.wait_for_function(
            "window.seen.some(([status, done]) => status === 'running' && done >= 100)"
        )
        assert "customers" in page.inner_text(".tracked-job-state .progress-text")
        page.click("button.job-cancel")
        page.wait_for_selector(".tracked-job-state[data-status=cancelled]")
        cancelled = Job.objects.get(pk=job.pk)
        assert cancelled.status == JobStatus.CANCELLED
        assert 0 < cancelled.done < 600

        # Retry: a new, linked job page that runs to its end...
        page.click("button.job-retry")
        wait_until(lambda: Job.objects.filter(retry_of=job).exists())
        retried = Job.objects.get(retry_of=job)
        page.wait_for_url(live.url(f"/jobs/{retried.pk}/"))
        page.wait_for_selector(".tracked-job-state[data-status=succeeded]", timeout=30_000)
        assert "600 customers" in page.inner_text(".job-result")
        steps: Any = page.locator(".job-steps li").all_inner_texts()
        assert [step.split(" ")[0] for step in steps] == ["counting", "summing"]

        # ...and the overview, open in another tab all along, shows a notice.
        notice = overview.wait_for_selector(f".job-notice:has(a[href='/jobs/{retried.pk}/'])")
        assert notice is not None
        assert "finished" in notice.inner_text()
        notice.query_selector(".job-notice-close").click()  # type: ignore[union-attr]
        overview.wait_for_selector(".job-notice", state="detached")
