"""Streamboard as a cluster: what crosses between real server and worker processes.

Every process here is real (``manage.py serve``, ``db_worker``, ``ship_log``)
and they share only the database and, where set, Redis. In ``make test``'s
first pass that is the SQLite test file and the in-memory channel layer
(progress crosses through the job rows); in the services pass it is a
private PostgreSQL and Redis (progress crosses through Redis as well). The
Redis restart test starts its own restartable Redis (an fsynced AOF, so a
restart keeps the streams, as the README asks of a production Redis).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_tasks_db.models import DBTaskResult
from httpx_sse import EventSource, ServerSentEvent

from dashboard.models import Order
from streams.jobs.models import ExportJob
from tests.logs.redis.support import RedisProcess, redis_process, shipping, write_lines
from tests.support.admin_export import confirm_export
from tests.support.demo_orders import make_orders
from tests.support.export_worker import SLOW_EXPORT, export_env, redis_source_env, run_worker
from tests.support.live import LiveServer
from tests.support.personas import session_cookie
from tests.support.sse import read_events
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.services]

TASK_STARTED = re.compile(r"Task id=(\S+) path=\S+ state=RUNNING")


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    """A private export directory, shared with every server and worker subprocess."""
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def start_export_through(server: LiveServer, cookie: str) -> ExportJob:
    """The admin's "export in background" on all orders, posted to ``server`` over HTTP."""
    with httpx.Client(base_url=server.url(""), timeout=30) as client:
        page = client.get("/admin/dashboard/order/", headers={"Cookie": cookie})
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        csrf_cookie = page.cookies["csrftoken"]
        response = client.post(
            "/admin/dashboard/order/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "action": "export_in_background",
                "index": "0",
                "select_across": "1",
                "_selected_action": [str(Order.objects.values_list("pk", flat=True).first())],
                **confirm_export(),
            },
            headers={"Cookie": f"{cookie}; csrftoken={csrf_cookie}"},
        )
    assert response.status_code == 302, response.text[:300]
    return ExportJob.objects.latest("pk")


def state(event: ServerSentEvent) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(event.data)
    return data


def test_an_export_started_on_one_server_is_watched_to_100_and_downloaded_on_the_other(
    live_server_factory: Callable[..., LiveServer], cookie: str
) -> None:
    make_orders(300)
    a, b = live_server_factory(env=export_env()), live_server_factory(env=export_env())
    job = start_export_through(a, cookie)
    assert job.status == ExportJob.Status.QUEUED

    with run_worker(SLOW_EXPORT):
        states = [
            state(event)
            for event in read_events(
                b,
                f"/streams/exports/{job.pk}/?format=json",
                cookie,
                until=lambda event: state(event)["status"] not in ("queued", "running"),
                timeout=60,
            )
        ]
    assert states[-1] == {
        "id": job.pk,
        "status": "succeeded",
        "done": 300,
        "total": 300,
        "error": "",
    }
    moving = [s["done"] for s in states if s["status"] == "running" and 0 < s["done"] < 300]
    assert len(moving) >= 2, states  # watched live, not only the end
    assert moving == sorted(moving)

    html = read_events(b, f"/streams/exports/{job.pk}/", cookie, until=lambda e: True)
    assert 'data-percent="100"' in html[0].data
    link = re.search(r'href="(/exports/\d+/download)"', html[0].data)
    assert link
    assert link.group(1) == f"/exports/{job.pk}/download"
    download = httpx.get(b.url(link.group(1)), headers={"Cookie": cookie}, timeout=30)
    assert download.status_code == 200
    assert download.content.count(b"\n") == 300


def test_ten_jobs_on_two_workers_each_run_exactly_once(
    transactional_db: None, superuser: User, tmp_path: Path
) -> None:
    make_orders(100)
    admin = Client()
    admin.force_login(superuser)
    for _ in range(10):
        response = admin.post(
            "/admin/dashboard/order/",
            {
                "action": "export_in_background",
                "index": "0",
                "select_across": "1",
                "_selected_action": [str(Order.objects.values_list("pk", flat=True).first())],
                **confirm_export(),
            },
        )
        assert response.status_code == 302
    jobs = list(ExportJob.objects.order_by("pk"))
    assert len(jobs) == 10

    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with ExitStack() as workers:
        for log in logs:
            workers.enter_context(run_worker(SLOW_EXPORT, log=log))

        def all_finished() -> bool:
            return DBTaskResult.objects.filter(
                id__in=[job.task_id for job in jobs], finished_at__isnull=False
            ).count() == len(jobs)

        wait_until(all_finished, 120, "both workers finished the ten tasks")

    results = {str(r.id): r for r in DBTaskResult.objects.filter(id__in=[j.task_id for j in jobs])}
    assert len(results) == 10
    for job in ExportJob.objects.filter(pk__in=[j.pk for j in jobs]):
        assert job.status == ExportJob.Status.SUCCEEDED, job.error
        assert job.rows_done == job.rows_total == 100
        path = job.result_path()
        assert path is not None
        assert path.read_bytes().count(b"\n") == 100
        result = results[str(job.task_id)]
        assert result.status == "SUCCESSFUL"
        assert result.return_value == "succeeded"
        assert len(result.worker_ids) == 1, result.worker_ids  # claimed once, by one worker
    # Both workers took part: the ten were shared, not run by one of them alone.
    assert len({result.worker_ids[0] for result in results.values()}) == 2
    # Each task was started once in all: by one worker, never by both.
    started = [m for log in logs for m in TASK_STARTED.findall(log.read_text())]
    assert sorted(started) == sorted(results)
    assert all(TASK_STARTED.search(log.read_text()) for log in logs)


class EventSourceClient(threading.Thread):
    """What a browser's ``EventSource`` does, in a thread: read, and reconnect on loss.

    When the connection is lost it reconnects (after a short delay, as a
    browser waits ``retry:``) with ``Last-Event-ID`` set to the last id it
    saw. A read that hears nothing for ``silence`` seconds is an error, not a
    reason to reconnect: the servers here send a heartbeat every second, and a
    browser would wait forever on a silent open connection.
    """

    def __init__(
        self,
        url: str,
        cookie: str,
        until: Callable[[ServerSentEvent], bool],
        *,
        silence: float = 15.0,
        deadline: float = 90.0,
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.cookie, self.until = url, cookie, until
        self.silence, self.deadline = silence, time.monotonic() + deadline
        self.events: list[ServerSentEvent] = []
        self.connects = 0
        self.last_id = ""
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.socket: socket.socket | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set() and time.monotonic() < self.deadline:
                if self.read_until_lost():
                    return
                self.stopping.wait(0.3)  # the reconnection delay, as a browser's retry:
            raise AssertionError(f"{self.url}: not finished; saw {len(self.events)} events")
        except BaseException as exc:  # handed to the test by result()
            self.error = exc
        finally:
            self.done.set()

    def read_until_lost(self) -> bool:
        headers = {"Cookie": self.cookie}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        timeout = httpx.Timeout(self.silence, connect=5.0)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self.url, headers=headers) as response,
            ):
                assert response.status_code == 200, response.read()
                self.socket = response.extensions["network_stream"].get_extra_info("socket")
                self.connects += 1
                for event in EventSource(response).iter_sse():
                    if not event.data and event.event == "message":
                        continue  # the retry: hint alone, which a browser does not dispatch
                    self.events.append(event)
                    self.last_id = event.id or self.last_id
                    if self.until(event):
                        return True
        except httpx.ReadTimeout:
            raise AssertionError(f"{self.url}: silent for {self.silence}s") from None
        except httpx.TransportError:
            pass  # the connection was lost: reconnect
        return False

    def drop(self) -> None:
        """Lose the connection, as a network change does: the reader sees it end, and reconnects."""
        assert self.socket is not None
        self.socket.shutdown(socket.SHUT_RDWR)

    def result(self, timeout: float = 60.0) -> list[ServerSentEvent]:
        if not self.done.wait(timeout):
            raise AssertionError(f"{self.url}: still reading after {timeout}s: {self.events}")
        if self.error is not None:
            raise self.error
        return self.events


@pytest.fixture
def restartable_redis() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


def log_texts(events: list[ServerSentEvent]) -> list[str]:
    return [
        line["text"] for e in events if e.event == "lines" for line in orjson.loads(e.data)["lines"]
    ]


def test_redis_restarted_while_clients_watch_an_export_and_a_redis_source(
    live_server_factory: Callable[..., LiveServer],
    restartable_redis: RedisProcess,
    cookie: str,
    tmp_path: Path,
) -> None:
    env = redis_source_env(restartable_redis.url)
    a, b = live_server_factory(env=env), live_server_factory(env=env)
    make_orders(1500)  # 150 paced chunks: several seconds, so Redis goes away mid-export
    log = tmp_path / "web.log"
    log.write_text("")
    job = start_export_through(a, cookie)

    def finished(event: ServerSentEvent) -> bool:
        return event.event == f"job-{job.pk}" and state(event)["status"] not in (
            "queued",
            "running",
        )

    bar = EventSourceClient(b.url(f"/streams/exports/{job.pk}/?format=json"), cookie, finished)
    lines = EventSourceClient(
        a.url("/streams/logs/web/?format=json&backfill=0"),
        cookie,
        lambda event: event.event == "lines" and "INFO end" in event.data,
    )
    with (
        shipping(restartable_redis.url, "web", log, "web-1") as shipper,
        run_worker({**SLOW_EXPORT, "REDIS_URL": restartable_redis.url}),
    ):
        bar.start()
        lines.start()
        wait_until(lambda: lines.connects and bar.connects, 30, "both clients connected")
        write_lines(log, ["INFO before 1", "INFO before 2"])
        wait_until(lambda: len(log_texts(lines.events)) == 2, 30, "lines before the outage")
        wait_until(lambda: ExportJob.objects.get(pk=job.pk).rows_done > 0, 30, "export running")

        restartable_redis.stop()
        done_at_stop = ExportJob.objects.get(pk=job.pk).rows_done
        write_lines(log, ["INFO during 1", "INFO during 2", "INFO during 3"])
        wait_until(lambda: shipper.logged("Redis is unreachable"), 30, "the shipper retries")
        # The worker goes on without Redis: its progress is in the job's row.
        wait_until(
            lambda: ExportJob.objects.get(pk=job.pk).rows_done > done_at_stop,
            30,
            "the export goes on while Redis is down",
        )
        # Both browsers lose their connections while Redis is down, and come back
        # with their Last-Event-ID to servers that cannot reach Redis yet.
        for client in (bar, lines):
            client.drop()
        wait_until(lambda: lines.connects == bar.connects == 2, 30, "reconnected, Redis down")
        restartable_redis.start()

        write_lines(log, ["INFO after 1", "INFO end"])
        bar_events, line_events = bar.result(), lines.result()

    assert log_texts(line_events) == [
        "INFO before 1",
        "INFO before 2",
        "INFO during 1",
        "INFO during 2",
        "INFO during 3",
        "INFO after 1",
        "INFO end",
    ]
    states = [state(e) for e in bar_events if e.event == f"job-{job.pk}"]
    assert states[-1] == {
        "id": job.pk,
        "status": "succeeded",
        "done": 1500,
        "total": 1500,
        "error": "",
    }
    assert (bar.connects, lines.connects) == (2, 2)
    done = [s["done"] for s in states]
    assert done == sorted(done), "the bar went backwards"
    assert any(0 < s["done"] < 1500 for s in states), "the bar was not watched live"
