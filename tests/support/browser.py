"""Headless Chromium (Debian's) driven by Playwright, for real-browser tests.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from streams.jobs.models import ExportJob
from tests.support.live import LiveServer
from tests.support.services import skip_or_fail

CHROMIUM = os.environ.get("STREAMBOARD_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium is not installed at {CHROMIUM}")
    # Playwright's sync API runs an event loop in the test's thread; Django's
    # async-unsafe guard must allow the test's own ORM calls, for this test only
    # (set for good, it would switch the guard off for every later test, and for
    # the servers they start).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
            # While that loop runs, Django's connections live in a context
            # variable, not in the thread's own slot that pytest-django closes:
            # close them here, or PostgreSQL refuses to drop the test database
            # ("being accessed by other users").
            connections.close_all()


def sign_in(
    browser: Browser | BrowserContext, live: LiveServer, username: str, password: str
) -> Page:
    """A new page signed in through the real admin login form.

    Given a context, the page is the context's: its later pages share the session.
    """
    if isinstance(browser, BrowserContext):
        page = browser.new_page()
    else:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(15_000)
    page.goto(live.url("/admin/login/?next=/admin/"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(live.url("/admin/"))
    return page


def start_admin_export(page: Page, server: LiveServer, *, every_order: bool) -> ExportJob:
    """The admin's "export in background" on the orders, clicked through ``server``'s pages.

    ``every_order``: "Select all" (the whole changelist), else this page's rows
    (the 50 newest). The confirmation page's defaults: NDJSON, every field.
    """
    page.goto(server.url("/admin/dashboard/order/"))
    page.check("#action-toggle")
    if every_order:
        page.click("text=Select all")
    page.select_option("select[name=action]", "export_in_background")
    page.click("button[name=index]")
    page.click("#export-form input[type=submit]")
    page.wait_for_url(re.compile(r"/exports/\d+/$"))
    job = ExportJob.objects.get()
    assert page.url == server.url(f"/exports/{job.pk}/")
    assert job.status == ExportJob.Status.QUEUED
    return job


def download_export(page: Page, job: ExportJob, tmp_path: Path) -> tuple[str, Path]:
    """Click the bar's download link: the URL the browser fetched, and the file it saved.

    The saved name is the one the server gave (``Content-Disposition``).
    """
    with page.expect_download() as download_info:
        page.click("a.export-download")
    saved = download_info.value
    assert saved.suggested_filename == f"dashboard.order-{job.pk}.{job.format}"
    target = tmp_path / saved.suggested_filename
    saved.save_as(target)
    return saved.url, target
