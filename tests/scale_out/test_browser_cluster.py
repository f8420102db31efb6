"""The cluster as a browser sees it: pages on one server, the work on another process.

What ``test_cross_process`` proves with HTTP clients, shown in headless
Chromium: an export started through server A and run by a real worker is
watched live on a page served by server B and downloaded from it; and a Redis
restart, with a progress bar and a Redis log source open, is lived through by
both pages (their EventSources cut while Redis is down reconnect by themselves
and resume). In the first pass progress crosses through the job rows; in the
services pass through Redis as well. The restart test has its own restartable
Redis (``restartable_redis``), for the servers, the worker and the shipper.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from dashboard.models import Order
from streams.jobs.models import ExportJob
from tests.logs.redis.support import (
    RedisProcess,
    redis_process,
    shipped_lines,
    shipping,
    write_lines,
)
from tests.support.browser import download_export, sign_in, start_admin_export
from tests.support.demo_orders import make_orders
from tests.support.export_worker import SLOW_EXPORT, export_env, redis_source_env, run_worker
from tests.support.live import LiveServer, run_server
from tests.support.proxy import CuttableProxy
from tests.support.wait import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.services]

WAIT_MS = 30_000

# Every percent the bar shows, in order, recorded by the page itself as it changes.
RECORD_PERCENTS = """
() => {
  window.seenPercents = [];
  const record = () => {
    const state = document.querySelector('.export-job-state');
    if (state) window.seenPercents.push(Number(state.dataset.percent));
  };
  record();
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true});
}
"""
DONE = "Number(document.querySelector('.export-job-state').dataset.done)"


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    """A private export directory, shared with every server and worker subprocess."""
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One browser profile for the whole test: signed in once, its pages on any server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def restartable_redis() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


@pytest.fixture
def proxies() -> Iterator[Callable[[LiveServer], CuttableProxy]]:
    """``proxies(server)``: a cuttable forwarder in front of ``server``, closed at the end."""
    with ExitStack() as stack:

        def make(server: LiveServer) -> CuttableProxy:
            proxy = CuttableProxy(server)
            stack.callback(proxy.close)
            return proxy

        yield make


def watch_bar(page: Page, url: str) -> list[Request]:
    """Open a job page at ``url`` and record its bar; returns the page's stream requests, live."""
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if "/streams/exports/" in r.url else None)
    page.goto(url)
    page.wait_for_function("document.querySelector('.export-job-state') !== null")
    page.evaluate(RECORD_PERCENTS)
    # Connected before anything moves: htmx's EventSource on the sse-connect element is open.
    page.wait_for_function(
        "document.querySelector('[sse-connect]')['htmx-internal-data']"
        "?.sseEventSource?.readyState === 1",
        timeout=WAIT_MS,
    )
    return requests


def download(page: Page, job: ExportJob, tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Click the bar's download link: the URL the browser fetched, and the rows it saved."""
    url, target = download_export(page, job, tmp_path)
    lines = target.read_bytes().split(b"\n")
    assert lines[-1] == b""  # newline-terminated
    return url, [orjson.loads(line) for line in lines[:-1]]


def test_an_export_started_on_server_a_fills_its_bar_on_server_b_and_downloads_from_b(
    context: BrowserContext,
    live_server_factory: Callable[..., LiveServer],
    superuser: User,
    tmp_path: Path,
) -> None:
    make_orders(300)
    a, b = live_server_factory(env=export_env()), live_server_factory(env=export_env())
    on_a = sign_in(context, a, "root", "root-password")
    job = start_admin_export(on_a, a, every_order=True)
    on_a.close()

    # The same browser on server B: its session cookie is the host's, whatever the port.
    on_b = context.new_page()
    stream_requests = watch_bar(on_b, b.url(f"/exports/{job.pk}/"))
    with run_worker(SLOW_EXPORT):
        expect(
            on_b.locator('.export-job-state[data-status="succeeded"] a.export-download')
        ).to_be_visible(timeout=WAIT_MS)

    percents = on_b.evaluate("window.seenPercents")
    assert percents[-1] == 100
    assert len([p for p in percents if 0 < p < 100]) >= 2, percents  # watched live on B
    assert percents == sorted(percents)
    assert on_b.locator(".progress").get_attribute("aria-valuenow") == "100"
    assert on_b.locator(".export-job-state").get_attribute("data-done") == "300"
    link = on_b.locator("a.export-download")
    assert link.get_attribute("href") == f"/exports/{job.pk}/download"
    # One page load and one stream on B: the bar moved by events, never by a reload.
    assert on_b.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert [r.url for r in stream_requests] == [b.url(f"/streams/exports/{job.pk}/")]

    url, rows = download(on_b, job, tmp_path)
    assert url == b.url(f"/exports/{job.pk}/download")  # through server B, in this browser
    assert [row["id"] for row in rows] == list(
        Order.objects.order_by("pk").values_list("pk", flat=True)
    )
    for row in rows[:: len(rows) // 10]:
        order = Order.objects.get(pk=row["id"])
        assert row["reference"] == order.reference
        assert row["status"] == order.status
        assert row["quantity"] == order.quantity
    on_b.close()


MARK = re.compile(r"cluster-line (\d+) (\w+)")


def marked(page: Page) -> list[str]:
    """The marked lines the log page shows, in DOM order: ``["01 before", ...]``."""
    texts = page.locator("#log-lines .line").all_inner_texts()
    return [" ".join(m.groups()) for text in texts if (m := MARK.search(text))]


def test_redis_restarted_under_a_watched_bar_and_log_page_both_resume_without_gap_or_repeat(
    context: BrowserContext,
    live_server_factory: Callable[..., LiveServer],
    restartable_redis: RedisProcess,
    proxies: Callable[[LiveServer], CuttableProxy],
    superuser: User,
    tmp_path: Path,
) -> None:
    env = redis_source_env(restartable_redis.url)
    a, b = live_server_factory(env=env), live_server_factory(env=env)
    make_orders(1500)  # 150 chunks paced 0.1 s: Redis goes away and comes back mid-export
    log = tmp_path / "web.log"
    log.write_text("")

    admin = sign_in(context, a, "root", "root-password")
    job = start_admin_export(admin, a, every_order=True)
    admin.close()
    # Both pages reach their servers through forwarders whose connections the test cuts.
    to_a, to_b = proxies(a), proxies(b)
    bar = context.new_page()
    bar_streams = watch_bar(bar, to_b.url(f"/exports/{job.pk}/"))
    logs = context.new_page()
    status = logs.locator("#log-status")
    log_streams: list[Request] = []
    logs.on("request", lambda r: log_streams.append(r) if "/streams/logs/" in r.url else None)
    logs.goto(to_a.url("/logs/web/"))
    expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    expected: list[str] = []  # "NN when" of every line written, in order

    def write(when: str, count: int) -> None:
        numbers = range(len(expected) + 1, len(expected) + count + 1)
        write_lines(log, [f"INFO cluster-line {n:02d} {when}" for n in numbers])
        expected.extend(f"{n:02d} {when}" for n in numbers)

    with (
        shipping(restartable_redis.url, "web", log, "web-1") as shipper,
        run_worker(
            {
                **SLOW_EXPORT,
                "STREAMBOARD_EXPORT_CHUNK_DELAY": "0.1",
                "REDIS_URL": restartable_redis.url,
            }
        ),
    ):
        write("before", 3)
        expect(logs.locator("#log-lines .line", has_text="cluster-line 03")).to_be_visible(
            timeout=WAIT_MS
        )
        bar.wait_for_function(f"{DONE} > 0", timeout=WAIT_MS)

        restartable_redis.stop()
        write("during", 3)
        wait_until(lambda: shipper.logged("Redis is unreachable"), 30, "the shipper retries")
        expect(logs.locator("#log-lines .notice", has_text="Redis is unreachable")).to_be_visible(
            timeout=WAIT_MS
        )
        # The bar goes on while Redis is down: its server reads the job's row.
        shown = int(bar.evaluate(DONE))
        bar.wait_for_function(f"{DONE} > {shown}", timeout=WAIT_MS)

        # Both pages lose their connections while Redis is down; their
        # EventSources come back by themselves, with their Last-Event-ID, to
        # servers that cannot reach Redis yet.
        to_a.cut()
        to_b.cut()
        expect(status).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        wait_until(
            lambda: (
                len(bar_streams) == 2
                and bar.evaluate(
                    "document.querySelector('[sse-connect]')['htmx-internal-data']"
                    "?.sseEventSource?.readyState === 1"
                )
            ),
            30,
            "the bar's stream reconnected",
        )
        shown = int(bar.evaluate(DONE))
        bar.wait_for_function(f"{DONE} > {shown}", timeout=WAIT_MS)
        # Resumed after what it had: nothing shown again, and nothing shipped yet.
        assert marked(logs) == expected[:3]

        restartable_redis.start()
        assert ExportJob.objects.get(pk=job.pk).rows_done < 1500, (
            "the export ended before the restart"
        )
        write("after", 2)
        expect(
            logs.locator("#log-lines .line", has_text=f"cluster-line {len(expected):02d}")
        ).to_be_visible(timeout=WAIT_MS)
        expect(
            bar.locator('.export-job-state[data-status="succeeded"] a.export-download')
        ).to_be_visible(timeout=WAIT_MS)

    assert marked(logs) == expected
    expect(logs.locator("#log-lines .notice", has_text="Redis answers again")).to_be_visible()
    percents = bar.evaluate("window.seenPercents")
    assert percents[-1] == 100
    assert percents == sorted(percents), "the bar went backwards"
    assert bar.locator(".export-job-state").get_attribute("data-done") == "1500"
    # Each page kept its one load; each stream was opened twice, the second time resuming.
    for page in (bar, logs):
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    for streams in (bar_streams, log_streams):
        assert len(streams) == 2, [r.url for r in streams]
        assert "last-event-id" not in streams[0].all_headers()
        assert streams[1].all_headers().get("last-event-id"), streams[1].all_headers()
    bar.close()
    logs.close()


def test_a_log_page_on_a_redis_source_resumes_across_a_server_restart_without_gap_or_repeat(
    transactional_db: None,
    context: BrowserContext,
    restartable_redis: RedisProcess,
    proxies: Callable[[LiveServer], CuttableProxy],
    superuser: User,
    tmp_path: Path,
) -> None:
    """The page's server stops; lines are shipped while none runs; another server takes its
    place at the same address (the forwarder's). The page's own EventSource comes back with
    its Last-Event-ID and shows the missed lines once, then the live ones."""
    env = redis_source_env(restartable_redis.url)
    log = tmp_path / "web.log"
    log.write_text("")
    expected: list[str] = []

    def write(when: str, count: int) -> None:
        numbers = range(len(expected) + 1, len(expected) + count + 1)
        write_lines(log, [f"INFO cluster-line {n:02d} {when}" for n in numbers])
        expected.extend(f"{n:02d} {when}" for n in numbers)

    def shows(number: int) -> None:
        line = page.locator("#log-lines .line", has_text=f"cluster-line {number:02d}")
        expect(line).to_be_visible(timeout=WAIT_MS)

    streams: list[Request] = []
    with shipping(restartable_redis.url, "web", log, "web-1"):
        with run_server(env) as first:
            to_server = proxies(first)
            sign_in(context, first, "root", "root-password").close()
            page = context.new_page()
            page.on("request", lambda r: streams.append(r) if "/streams/logs/" in r.url else None)
            page.goto(to_server.url("/logs/web/"))
            status = page.locator("#log-status")
            expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
            write("before", 3)
            shows(3)
        expect(status).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        write("between", 3)  # shipped while no server runs
        with restartable_redis.client() as client:
            wait_until(lambda: len(shipped_lines(client, "web")) == 6, 30, "shipped meanwhile")
        with run_server(env) as second:
            to_server.upstream = (second.host, second.port)
            expect(status).to_have_attribute("data-state", "live", timeout=WAIT_MS)
            shows(6)
            write("after", 2)
            shows(8)
            assert marked(page) == expected
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
            assert "last-event-id" not in streams[0].all_headers()
            assert streams[-1].all_headers().get("last-event-id"), [r.url for r in streams]
            page.close()  # before its server stops: no stream left to wait out the grace
