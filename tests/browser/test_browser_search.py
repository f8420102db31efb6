"""The search page in headless Chromium against a real server: results stream in, the bar moves."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.logs.test_history import log_lines, write
from tests.support.browser import sign_in
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

WAIT_MS = 15_000


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    write(tmp_path / "test.log.2.gz", log_lines(0, 3000))
    write(tmp_path / "test.log.1", log_lines(3000, 3000))
    return write(tmp_path / "test.log", log_lines(6000, 3000))


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer], log_file: Path) -> Iterator[LiveServer]:
    live = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log_file}"})
    yield live
    live.process.kill()


@pytest.fixture
def page(browser: Browser, server: LiveServer, staff_user) -> Iterator[Page]:
    page = sign_in(browser, server, "staff", "staff-password")
    page.goto(server.url("/logs/test/search"))
    yield page
    page.close()


def test_a_search_streams_results_newest_first_and_fills_the_bar(page: Page, log_file: Path):
    page.fill("input[name=q]", "line 8")
    page.fill("input[name=re]", r"payment=no$")
    page.click("button[type=submit]")
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text("results", timeout=WAIT_MS)
    results = page.locator("#search-results .search-result")
    expected = [i for i in range(8999, -1, -1) if str(i).startswith("8") and i % 3 == 0]
    expect(results).to_have_count(len(expected))
    expect(summary).to_have_text(re.compile(rf"^{len(expected)} results"))
    first = results.first
    expect(first).to_contain_text(f"line {expected[0]} payment=no")
    expect(first.locator("mark").first).to_have_text("line 8")
    # The bar reached its end; a result of the current file links to the tail at its line.
    progress = page.locator("#search-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max")
    inode = log_file.stat().st_ino
    expect(first.locator("a.result-link")).to_have_attribute(
        "href", re.compile(rf"^/logs/test/\?at={inode}:\d+$")
    )
    expect(page.locator("#search-stop")).to_be_disabled()


def test_an_invalid_pattern_is_shown_on_the_page(page: Page):
    page.fill("input[name=re]", "(unclosed")
    page.click("button[type=submit]")
    expect(page.locator(".errors")).to_contain_text("re: not a valid regular expression")
    expect(page.locator("#search-sse")).to_have_count(0)


def test_a_results_permalink_opens_the_tail_at_that_line_then_follows_live(
    page: Page, log_file: Path
):
    page.fill("input[name=q]", "line 8500 ")
    page.click("button[type=submit]")
    result = page.locator("#search-results .search-result")
    expect(result).to_have_count(1, timeout=WAIT_MS)
    result.locator("a.result-link").click()
    expect(page).to_have_url(re.compile(r"/logs/test/\?at=\d+:\d+$"), timeout=WAIT_MS)
    target = page.locator("#log-lines .line.target")
    expect(target).to_contain_text("line 8500 payment=", timeout=WAIT_MS)
    expect(target).to_be_in_viewport()
    # The 50 lines before it, and the rest up to the present after it.
    lines = page.locator("#log-lines .line")
    expect(lines.first).to_contain_text("line 8450 ")
    expect(lines.last).to_contain_text("line 8999 ")
    # Then live: a line written now arrives below.
    with log_file.open("a") as handle:
        handle.write("2026-12-02 10:00:00,000 INFO written after the permalink opened\n")
    expect(lines.last).to_contain_text("written after the permalink opened", timeout=WAIT_MS)
    expect(target).to_have_count(1)
