"""The demo's tracked tasks in headless Chromium: started, watched, cancelled, retried, noticed.

The customer summary is started from ``/jobs/``; the seed (``make run``'s
``demo.seed`` job) is watched on the overview, and its end and another job's
failure are noticed on a log page, over the log page's own stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser

from dashboard.models import Customer, Order
from dashboard.tasks import start_seeding
from streams.jobs.models import Job, JobStatus
from streams.jobs.tracking import start
from tests.support.browser import sign_in
from tests.support.demo_orders import make_customer, make_orders
from tests.support.export_worker import run_worker
from tests.support.live import LiveServer
from tests.support.tracked_tasks import count_widgets
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
        # The only one: a cancel is the user's own doing and sends none (finishes and failures do).
        assert overview.locator(".job-notice").count() == 1
        notice.query_selector(".job-notice-close").click()  # type: ignore[union-attr]
        overview.wait_for_selector(".job-notice", state="detached")


SEED_BAR = """
(pk) => {
  window.bar = [];
  const record = () => {
    const link = document.querySelector(`.overview-jobs a[href='/jobs/${pk}/']`);
    const state = link && link.closest('.tracked-job-state');
    const data = state && state.dataset;
    if (data) window.bar.push([data.status, Number(data.done), data.step]);
  };
  record();
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true});
}
"""


def test_the_seed_bar_moves_on_the_overview_and_a_log_page_notices_its_end_and_a_failure(
    browser: Browser,
    live_server_factory: Callable[..., LiveServer],
    superuser: User,
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO started\n")
    live = live_server_factory(env={"STREAMBOARD_LOGS": f"app={log}"})
    seed = start_seeding(2_000, batch=100, user=superuser)  # what make run's start_demo_seed does
    assert seed is not None
    overview = sign_in(browser, live, "root", "root-password")
    overview.goto(live.url("/"))
    overview.wait_for_selector(f".overview-jobs a[href='/jobs/{seed.pk}/']")
    overview.evaluate(SEED_BAR, seed.pk)
    log_page = sign_in(browser, live, "root", "root-password")
    log_page.goto(live.url("/logs/app/"))
    log_page.wait_for_selector("text=INFO started")

    with run_worker({**PACED, "STREAMBOARD_JOB_CHUNK_DELAY": "0.1"}):
        # The overview's bar moves in orders, batch after batch, while the worker seeds.
        overview.wait_for_function(
            "new Set(window.bar.filter(([s, done]) => s === 'running' && done > 0)"
            ".map(([s, done]) => done)).size >= 3",
            timeout=30_000,
        )
        assert "orders" in overview.inner_text(f"#job-{seed.pk} .progress-text")
        notice = log_page.wait_for_selector(
            f".job-notice:has(a[href='/jobs/{seed.pk}/'])", timeout=60_000
        )
        assert notice is not None
        assert f"demo.seed #{seed.pk} finished" in notice.inner_text()
        assert Order.objects.count() == 2_000
        # The bar, listed while it ran, ends at 100 % on the overview.
        overview.wait_for_selector(
            f"#job-{seed.pk} .tracked-job-state[data-status=succeeded][data-percent='100']"
        )
        steps = [step for _, _, step in overview.evaluate("window.bar")]
        assert "inserting orders" in steps

        # A failure shows on the overview's panel, and is noticed on the log page too.
        failing = start(count_widgets, 3, 0, fail_at=1, user=superuser)
        failed = log_page.wait_for_selector(
            f".job-notice.status-failed:has(a[href='/jobs/{failing.pk}/'])", timeout=30_000
        )
        assert failed is not None
        assert "failed" in failed.inner_text()
        overview.wait_for_selector(f"#job-{failing.pk} .tracked-job-state[data-status=failed]")
        assert "widget 1 is broken" in overview.inner_text(f"#job-{failing.pk} .job-error")
    assert Job.objects.get(pk=seed.pk).status == JobStatus.SUCCEEDED
