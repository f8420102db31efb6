"""The live log page in headless Chromium against a real server tailing a real file.

Each test writes to the log file itself and waits (with Playwright's bounded
waits) for what a user would see: no sleeps, no mocked stream.

``STREAMBOARD_SCREENSHOT=docs/screenshot-logs.png`` makes the rendering test
also save the README's screenshot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect

from tests.support.browser import sign_in
from tests.support.live import LiveServer
from tests.support.proxy import CuttableProxy

pytestmark = [pytest.mark.browser, pytest.mark.live]

WAIT_MS = 15_000

BACKFILL = [
    "2026-11-25 21:58:01,114 INFO  app.startup: worker 3 ready in 412 ms",
    "2026-11-25 21:58:02,031 DEBUG app.cache: warm cache hit ratio=0.93",
]

DEMO = [
    '2026-11-25 21:58:03,207 INFO  app.request: 10.1.4.22 "GET /api/orders?page=2 HTTP/1.1" 200',
    "2026-11-25 21:58:03,552 DEBUG app.db: SELECT 50 rows from orders in 4.1 ms",
    "2026-11-25 21:58:04,010 WARNING app.payments: retrying charge ch_3Pq after timeout (2/3)",
    '2026-11-25 21:58:04,388 INFO  app.request: 10.1.7.9 "POST /api/checkout HTTP/1.1" 201 88ms',
    '{"ts": "2026-11-25T21:58:04.702Z", "level": "info", "logger": "billing", '
    '"event": "invoice.created", "invoice": "in_1042", "amount": 4200, "currency": "EUR"}',
    "2026-11-25 21:58:05,119 ERROR app.views: Internal Server Error: /api/orders/77/refund",
    "Traceback (most recent call last):",
    '  File "/srv/app/orders/views.py", line 142, in refund',
    "    payment = gateway.refund(order.charge_id, amount=order.total)",
    '  File "/srv/app/payments/gateway.py", line 58, in refund',
    '    raise GatewayError(f"refund rejected: {reason}")',
    "payments.gateway.GatewayError: refund rejected: charge already refunded",
    '2026-11-25 21:58:05,480 INFO  app.request: 10.1.4.22 "GET /healthz HTTP/1.1" 200 1ms',
    "2026-11-25 21:58:06,001 CRITICAL app.db: connection pool exhausted (50/50), requests queue",
    '2026-11-25 21:58:06,244 INFO  app.request: 10.1.9.31 "GET /api/orders/77 HTTP/1.1" 404 6ms',
]


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.log"
    append(path, *BACKFILL)
    return path


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer], log_file: Path) -> Iterator[LiveServer]:
    live = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log_file}"})
    yield live
    # A server that has tailed a log takes its full 10 s grace period to stop
    # on SIGTERM (reported to the server's owner); nothing here depends on a
    # graceful stop, so end it at once to keep the suite fast.
    live.process.kill()


@pytest.fixture
def stream_requests() -> list[str]:
    return []


@pytest.fixture
def log_page(
    browser: Browser, server: LiveServer, staff_user, stream_requests: list[str]
) -> Iterator[Page]:
    """The signed-in log page, live, with its backfill shown."""
    page = sign_in(browser, server, "staff", "staff-password")

    def record(request: Request) -> None:
        if "/streams/" in request.url:
            stream_requests.append(request.url)

    page.on("request", record)
    page.goto(server.url("/logs/test/"))
    expect(page.locator("#log-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#log-lines")).to_contain_text("worker 3 ready", timeout=WAIT_MS)
    yield page
    page.close()


def lines(page: Page) -> Callable[[str], Locator]:
    return lambda text: page.locator("#log-lines .line", has_text=text)


def test_a_line_appended_to_the_file_appears_on_the_page(log_page: Page, log_file: Path):
    line = lines(log_page)
    append(log_file, "2026-11-25 22:00:00,000 ERROR app: appended-by-the-test")
    expect(line("appended-by-the-test")).to_be_visible(timeout=WAIT_MS)
    expect(line("appended-by-the-test")).to_have_class(re.compile(r"\blevel-error\b"))
    expect(log_page.locator("#log-count")).to_have_text("3 lines")


def test_paused_lines_are_counted_then_shown_in_order_on_resume(log_page: Page, log_file: Path):
    line = lines(log_page)
    pause = log_page.locator("#log-pause")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")

    append(log_file, *(f"2026-11-25 22:00:0{i},000 INFO app: while-paused-{i}" for i in range(3)))
    # The lines reached the page (the button counts them) but are not shown.
    expect(pause).to_have_text("Resume (3 new)", timeout=WAIT_MS)
    expect(log_page.locator("#log-lines")).not_to_contain_text("while-paused")

    pause.click()
    expect(pause).to_have_text("Pause")
    for i in range(3):
        expect(line(f"while-paused-{i}")).to_be_visible()
    texts = log_page.locator("#log-lines .line").all_inner_texts()
    assert [t for t in texts if "while-paused" in t] == [
        f"2026-11-25 22:00:0{i},000 INFO app: while-paused-{i}" for i in range(3)
    ]


def test_level_filter_reconnects_once_and_shows_only_matching_lines(
    log_page: Page, log_file: Path, stream_requests: list[str]
):
    line = lines(log_page)
    assert len(stream_requests) == 1
    log_page.select_option("#log-level", "warning")
    expect(log_page.locator("#log-lines")).not_to_contain_text("worker 3 ready", timeout=WAIT_MS)
    expect(log_page.locator("#log-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert len(stream_requests) == 2
    assert "level=warning" in stream_requests[-1]
    assert "level=warning" in log_page.url

    append(
        log_file,
        "2026-11-25 22:00:01,000 INFO app: filtered-out-info",
        "2026-11-25 22:00:02,000 WARNING app: kept-warning",
    )
    expect(line("kept-warning")).to_be_visible(timeout=WAIT_MS)
    # Written before the warning on the same connection: it would be here by now.
    expect(log_page.locator("#log-lines")).not_to_contain_text("filtered-out-info")


def test_text_filter_reconnects_after_typing(
    log_page: Page, log_file: Path, stream_requests: list[str]
):
    line = lines(log_page)
    log_page.locator("#log-q").press_sequentially("needle", delay=20)
    expect(log_page.locator("#log-lines")).not_to_contain_text("worker 3 ready", timeout=WAIT_MS)
    expect(log_page.locator("#log-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    # Debounced: one new connection for the whole word, not one per key.
    assert len(stream_requests) == 2
    assert "q=needle" in stream_requests[-1]
    append(log_file, "INFO haystack", "INFO a NEEDLE in it")
    expect(line("a NEEDLE in it")).to_be_visible(timeout=WAIT_MS)
    expect(log_page.locator("#log-lines")).not_to_contain_text("haystack")


def test_regex_and_exclude_filter_highlight_and_report_an_invalid_pattern(
    log_page: Page, log_file: Path, stream_requests: list[str]
):
    line = lines(log_page)
    log_page.locator("#log-re").fill(r"order \d+")
    log_page.locator("#log-exclude").fill("refunded")
    expect(log_page.locator("#log-lines")).not_to_contain_text("worker 3 ready", timeout=WAIT_MS)
    expect(log_page.locator("#log-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert "re=order" in log_page.url
    assert "exclude=refunded" in log_page.url
    append(log_file, "INFO order 7 refunded", "INFO order 8 <paid>", "INFO no match")
    expect(line("order 8 <paid>")).to_be_visible(timeout=WAIT_MS)
    expect(line("order 8").locator("mark")).to_have_text("order 8")
    expect(log_page.locator("#log-lines")).not_to_contain_text("order 7")
    expect(log_page.locator("#log-lines")).not_to_contain_text("no match")

    # RE2 refuses look-ahead: the stream's 400 message is shown, the old filter stays.
    log_page.locator("#log-re").fill("order(?=x)")
    expect(log_page.locator("#log-filter-error")).to_contain_text(
        "re: not a valid regular expression", timeout=WAIT_MS
    )
    append(log_file, "INFO order 9 still filtered")
    expect(line("order 9 still filtered")).to_be_visible(timeout=WAIT_MS)


def test_clear_empties_the_view_and_new_lines_still_arrive(log_page: Page, log_file: Path):
    log_page.locator("#log-clear").click()
    expect(log_page.locator("#log-lines .line")).to_have_count(0)
    append(log_file, "INFO after-clear")
    expect(lines(log_page)("after-clear")).to_be_visible(timeout=WAIT_MS)
    expect(log_page.locator("#log-lines .line")).to_have_count(1)


def test_the_page_keeps_only_its_line_limit(log_page: Page, log_file: Path):
    limit = int(log_page.locator("#logview").get_attribute("data-max-lines") or 0)
    assert limit == 2000
    total, batch = limit + 500, 500
    # In batches the size of a busy second, each waited for, so the server
    # never has a reason to skip lines for this client.
    for start in range(0, total, batch):
        append(log_file, *(f"INFO bulk line {i:05d}" for i in range(start, start + batch)))
        expect(lines(log_page)(f"bulk line {start + batch - 1:05d}")).to_be_visible(timeout=WAIT_MS)
    expect(log_page.locator("#log-lines")).not_to_contain_text("skipped")
    count = log_page.locator("#log-lines .line").count()
    assert count <= limit
    expect(log_page.locator("#log-lines")).not_to_contain_text("worker 3 ready")


def test_the_indicator_shows_reconnecting_when_the_server_goes_away(
    log_page: Page, server: LiveServer
):
    server.process.kill()  # gone at once, as a crashed server or a dropped network is
    server.process.wait(timeout=10)
    expect(log_page.locator("#log-status")).not_to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    state = log_page.locator("#log-status").get_attribute("data-state")
    assert state in {"reconnecting", "disconnected"}


def test_demo_lines_render_with_level_colours_tracebacks_and_json(log_page: Page, log_file: Path):
    append(log_file, *DEMO)
    entries = log_page.locator("#log-lines .entry")
    expect(log_page.locator("#log-lines")).to_contain_text("GET /api/orders/77", timeout=WAIT_MS)
    # The traceback is one entry with its header line, at the header's level.
    traceback = entries.filter(has_text="Traceback (most recent call last)")
    expect(traceback).to_have_count(1)
    expect(traceback).to_have_class(re.compile(r"\blevel-error\b"))
    expect(traceback).to_contain_text("Internal Server Error")
    expect(traceback).to_contain_text("GatewayError: refund rejected")
    # JSON is shown pretty-printed, one key per line.
    expect(log_page.locator("#log-lines pre.json")).to_contain_text('"event": "invoice.created"')
    # Levels look different: error and critical lines are not coloured like info.
    colour = "el => getComputedStyle(el).color"
    info = log_page.locator("#log-lines .line.level-info").first.evaluate(colour)
    error = log_page.locator("#log-lines .line.level-error").first.evaluate(colour)
    critical = log_page.locator("#log-lines .line.level-critical").first.evaluate(colour)
    assert len({info, error, critical}) == 3

    target = os.environ.get("STREAMBOARD_SCREENSHOT")
    if target:
        log_page.set_viewport_size({"width": 1280, "height": 760})
        log_page.locator("#log-output").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        log_page.screenshot(path=target)


AT_END = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 4"


def test_follow_keeps_the_newest_line_in_view_and_off_leaves_the_view_still(
    log_page: Page, log_file: Path
):
    output = log_page.locator("#log-output")
    append(log_file, *(f"INFO filler {i:03d}" for i in range(150)))
    expect(lines(log_page)("filler 149")).to_be_in_viewport(timeout=WAIT_MS)
    assert output.evaluate(AT_END)

    log_page.locator("#log-follow").uncheck()
    before = output.evaluate("el => el.scrollTop")
    append(log_file, *(f"INFO more {i:03d}" for i in range(50)))
    expect(lines(log_page)("more 049")).to_be_attached(timeout=WAIT_MS)
    expect(lines(log_page)("more 049")).not_to_be_in_viewport()
    assert output.evaluate("el => el.scrollTop") == before

    log_page.locator("#log-follow").check()
    expect(lines(log_page)("more 049")).to_be_in_viewport()


def test_overview_card_shows_the_latest_line_live(
    browser: Browser, server: LiveServer, staff_user, log_file: Path
):
    page = sign_in(browser, server, "staff", "staff-password")
    page.goto(server.url("/"))
    expect(page.locator("#overview-status")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    card = page.locator(".source-card", has=page.locator("a[href='/logs/test/']"))
    expect(card.locator(".latest")).to_contain_text("warm cache", timeout=WAIT_MS)

    append(log_file, "2026-11-25 22:00:00,000 ERROR app: overview-sees-this")
    expect(card.locator(".latest")).to_contain_text("overview-sees-this", timeout=WAIT_MS)
    expect(card.locator(".latest")).to_have_class(re.compile(r"\blevel-error\b"))
    expect(card.locator(".rate.level-error dd")).not_to_have_text("0", timeout=WAIT_MS)
    page.close()


def test_a_dropped_connection_resumes_without_gap_or_duplicate(
    browser: Browser, server: LiveServer, staff_user, log_file: Path
):
    proxy = CuttableProxy(server)
    try:
        page = sign_in(browser, proxy, "staff", "staff-password")  # type: ignore[arg-type]
        status = page.locator("#log-status")
        page.goto(proxy.url("/logs/test/"))
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        append(log_file, "INFO before-the-cut")
        expect(lines(page)("before-the-cut")).to_be_visible(timeout=WAIT_MS)

        proxy.cut()
        expect(status).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        # Written while the page is cut off: it must arrive once it is back.
        append(log_file, *(f"INFO during-the-gap {i}" for i in range(5)))
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        append(log_file, "INFO after-the-cut")
        expect(lines(page)("after-the-cut")).to_be_visible(timeout=WAIT_MS)

        texts = page.locator("#log-lines .line").all_inner_texts()
        expected = [
            *BACKFILL,
            "INFO before-the-cut",
            *(f"INFO during-the-gap {i}" for i in range(5)),
            "INFO after-the-cut",
        ]
        assert texts == expected
        page.close()
    finally:
        proxy.close()


def test_after_an_error_status_the_new_connection_resumes_from_the_last_cursor(
    browser: Browser, server: LiveServer, staff_user, log_file: Path
):
    proxy = CuttableProxy(server)
    try:
        page = sign_in(browser, proxy, "staff", "staff-password")  # type: ignore[arg-type]
        status = page.locator("#log-status")
        page.goto(proxy.url("/logs/test/"))
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        append(log_file, "INFO before-the-failure")
        expect(lines(page)("before-the-failure")).to_be_visible(timeout=WAIT_MS)

        # The browser's reconnect gets a 503: EventSource gives up (CLOSED)
        # and htmx starts a new one, which knows nothing of Last-Event-ID.
        with proxy.lock:
            proxy.refuse = 1
        proxy.cut()
        expect(status).to_have_attribute("data-state", "disconnected", timeout=WAIT_MS)
        append(log_file, *(f"INFO during-the-gap {i}" for i in range(3)))
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        append(log_file, "INFO after-the-failure")
        expect(lines(page)("after-the-failure")).to_be_visible(timeout=WAIT_MS)

        assert len(proxy.refused) == 1
        assert b"/streams/logs/test/" in proxy.refused[0]
        texts = page.locator("#log-lines .line").all_inner_texts()
        assert texts == [
            *BACKFILL,
            "INFO before-the-failure",
            *(f"INFO during-the-gap {i}" for i in range(3)),
            "INFO after-the-failure",
        ]
        page.close()
    finally:
        proxy.close()


def test_scrolling_up_stops_following_and_scrolling_back_down_resumes_it(
    log_page: Page, log_file: Path
):
    output = log_page.locator("#log-output")
    follow = log_page.locator("#log-follow")
    append(log_file, *(f"INFO filler {i:03d}" for i in range(150)))
    expect(lines(log_page)("filler 149")).to_be_in_viewport(timeout=WAIT_MS)

    output.hover()
    log_page.mouse.wheel(0, -600)
    expect(follow).not_to_be_checked()
    log_page.mouse.wheel(0, 100_000)
    expect(follow).to_be_checked()
    append(log_file, "INFO followed-again")
    expect(lines(log_page)("followed-again")).to_be_in_viewport(timeout=WAIT_MS)


def test_the_page_fits_a_narrow_window_without_sideways_scrolling(log_page: Page, log_file: Path):
    log_page.set_viewport_size({"width": 360, "height": 640})
    append(log_file, "ERROR " + "x" * 400, "INFO " + "a-long-token/" * 40)
    expect(lines(log_page)("a-long-token")).to_be_visible(timeout=WAIT_MS)
    overflow = "el => el.scrollWidth - el.clientWidth"
    assert log_page.locator("html").evaluate(overflow) <= 0
    assert log_page.locator("#log-output").evaluate(overflow) <= 0
    for control in ("#log-level", "#log-q", "#log-pause", "#log-follow", "#log-clear"):
        expect(log_page.locator(control)).to_be_in_viewport()


COUNT_EVENT_SOURCES = """
(() => {
  const Original = window.EventSource;
  window.__eventSources = [];
  window.EventSource = function (url, options) {
    const source = new Original(url, options);
    window.__eventSources.push(source);
    return source;
  };
  window.EventSource.prototype = Original.prototype;
  Object.assign(window.EventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});
})();
"""
OPEN_SOURCES = "() => window.__eventSources.filter(s => s.readyState !== 2).length"


def test_the_page_never_holds_more_than_one_stream_open(
    browser: Browser, server: LiveServer, staff_user
):
    page = sign_in(browser, server, "staff", "staff-password")
    page.add_init_script(COUNT_EVENT_SOURCES)
    page.goto(server.url("/logs/test/"))
    status = page.locator("#log-status")
    expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert page.evaluate(OPEN_SOURCES) == 1

    for level in ("error", "info", ""):
        page.select_option("#log-level", level)
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    page.locator("#log-q").fill("ready")
    expect(page.locator("#log-sse")).to_have_attribute("sse-connect", re.compile("q=ready"))
    expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#log-lines")).to_contain_text("worker 3 ready", timeout=WAIT_MS)

    assert page.evaluate("() => window.__eventSources.length") == 5
    assert page.evaluate(OPEN_SOURCES) == 1
    page.close()
