"""A ``redis:`` log source served by real servers, fed by real shippers, over a real Redis.

The server (``manage.py serve``) runs with ``STREAMBOARD_LOGS=web=redis:web``
and ``REDIS_URL``; lines come from ``ship_log`` processes or, where a test
needs entries in an exact shape (trimming), from ``XADD`` in the test.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.logs.redis.support import (
    RedisProcess,
    read_lines,
    redis_process,
    shipped_lines,
    shipping,
    sse,
    write_lines,
)
from tests.support.http_body import ChunkedDecoder, parse_head, read_head
from tests.support.live import LiveServer, run_server
from tests.support.proxy import CuttableProxy
from tests.support.sse import events_in
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

STREAM = "/streams/logs/web/?format=json"


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


@pytest.fixture
def env(redis_server: RedisProcess) -> dict[str, str]:
    return {"STREAMBOARD_LOGS": "web=redis:web", "REDIS_URL": redis_server.url}


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer], env: dict[str, str]) -> LiveServer:
    return live_server_factory(env=env)


def add(redis_server: RedisProcess, texts: list[str], host: str = "web-1") -> list[str]:
    """``XADD`` lines as a shipper would; their entry ids."""
    with redis_server.client() as client:
        return [
            str(client.xadd("streamboard:log:web", {"host": host, "line": text, "pos": "1:1"}))
            for text in texts
        ]


def test_two_hosts_into_one_source_give_one_merged_view_with_host_labels(
    server: LiveServer, redis_server: RedisProcess, tmp_path: Path, staff_cookie: str
):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    with (
        shipping(redis_server.url, "web", a, "web-1"),
        shipping(redis_server.url, "web", b, "web-2"),
        sse(server.url(STREAM + "&backfill=0"), staff_cookie) as events,
    ):
        assert read_lines(events, 0)[0] == []  # subscribed: the first event is there
        expected = []
        for path, host, text in [
            (a, "web-1", "INFO one"),
            (b, "web-2", "ERROR two"),
            (a, "web-1", "INFO three"),
        ]:
            write_lines(path, [text])
            expected.append((host, text))
            assert read_lines(events, 1)[0] == [(host, text)]
    with sse(server.url(STREAM + "&host=web-2&backfill=10"), staff_cookie) as events:
        assert read_lines(events, 1)[0] == [("web-2", "ERROR two")]
    with sse(server.url(STREAM + "&backfill=10"), staff_cookie) as events:
        assert read_lines(events, 3)[0] == expected
    with sse(server.url("/streams/logs/web/?backfill=10&host=web-2"), staff_cookie) as events:
        fragment = next(events).data
    assert '<span class="host">web-2</span> ERROR two' in fragment
    refused = httpx.get(server.url(STREAM + "&host=a%20b"), headers={"Cookie": staff_cookie})
    assert refused.status_code == 400
    assert refused.text.startswith("host:")
    download = httpx.get(server.url("/logs/web/download"), headers={"Cookie": staff_cookie})
    assert download.status_code == 200
    assert download.text == "web-1 INFO one\nweb-2 ERROR two\nweb-1 INFO three\n"


def clients(server: LiveServer, cookie: str) -> int:
    """The server's live clients of ``web`` (``/clients``: what its fan-out counts)."""
    answer = httpx.get(server.url("/streams/logs/web/clients"), headers={"Cookie": cookie})
    return int(answer.json()["clients"])


def test_the_head_goes_out_only_once_the_source_knows_where_the_client_starts(
    live_server_factory: Callable[..., LiveServer], redis_server: RedisProcess, staff_cookie: str
):
    """What a client sees after the head is its own, even with ``backfill=0``.

    A Redis source learns where a subscription starts from its reader's
    first answer. The server reaches Redis through a forwarder that holds
    that first question back: until it is answered the client gets nothing
    (an earlier version sent the head at once, so a line shipped right
    after it could fall before the start and never arrive).
    """
    (before,) = add(redis_server, ["INFO before"])
    proxy = CuttableProxy(("127.0.0.1", redis_server.port))
    try:
        server = live_server_factory(
            env={
                "STREAMBOARD_LOGS": "web=redis:web",
                "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
                "STREAMBOARD_HEARTBEAT_SECONDS": "60",
            }
        )
        proxy.hold()
        with socket.create_connection((server.host, server.port), timeout=15) as sock:
            sock.sendall(
                f"GET {STREAM}&backfill=0 HTTP/1.1\r\nHost: {server.host}\r\n"
                f"Cookie: {staff_cookie}\r\n\r\n".encode()
            )
            wait_until(proxy.holding.is_set, 30.0, "the source's reader asks Redis")
            wait_until(lambda: clients(server, staff_cookie) == 1, 30.0, "the client subscribed")
            # The server has subscribed the client (it sent the head before that once).
            assert select.select([sock], [], [], 0)[0] == []  # not even the head
            proxy.release()
            head, rest = read_head(sock)
            assert parse_head(head)[0] == 200
            body = ChunkedDecoder()
            body.feed(rest)
            while not body.sizes:
                body.feed(sock.recv(65536))
            first_chunk = bytes(body.body[: body.sizes[0]])
            assert first_chunk.startswith(b"retry: ")  # the prelude rides with...
            (opening,) = events_in(first_chunk)  # ...the first event
            assert (opening.event, opening.id) == ("lines", before)
            (after,) = add(redis_server, ["INFO after"])
            while b"INFO after" not in body.body:
                body.feed(sock.recv(65536))
            (live,) = [e for e in events_in(bytes(body.body)) if e.event == "lines"][1:]
            assert live.id == after
            assert "INFO before" not in body.body.decode()
    finally:
        proxy.close()


def test_a_resume_across_a_server_restart_has_no_gap_and_no_duplicate(
    env: dict[str, str], redis_server: RedisProcess, tmp_path: Path, staff_cookie: str
):
    log = tmp_path / "app.log"
    with shipping(redis_server.url, "web", log, "web-1"):
        with (
            run_server(env) as first,
            sse(first.url(STREAM + "&backfill=0"), staff_cookie) as events,
        ):
            read_lines(events, 0)
            write_lines(log, ["INFO seen 1", "INFO seen 2"])
            seen, cursor = read_lines(events, 2)
        assert [text for _, text in seen] == ["INFO seen 1", "INFO seen 2"]
        write_lines(log, ["INFO missed 1", "INFO missed 2"])  # no server runs
        with redis_server.client() as client:
            wait_until(lambda: len(shipped_lines(client, "web")) == 4, 30.0, "shipped")
        with run_server(env) as second:
            headers = {"Last-Event-ID": cursor}
            with sse(second.url(STREAM), staff_cookie, headers) as events:
                notices: list[str] = []
                assert read_lines(events, 2, notices)[0] == [
                    ("web-1", "INFO missed 1"),
                    ("web-1", "INFO missed 2"),
                ]
                write_lines(log, ["INFO live again"])
                assert read_lines(events, 1, notices)[0] == [("web-1", "INFO live again")]
                assert notices == []


def test_a_trimmed_away_cursor_resumes_from_the_oldest_entry_with_a_notice(
    server: LiveServer, redis_server: RedisProcess, staff_cookie: str
):
    ids = add(redis_server, [f"INFO line {i}" for i in range(300)])
    with redis_server.client() as client:
        client.xtrim("streamboard:log:web", maxlen=100, approximate=False)
    notices: list[str] = []
    with sse(server.url(STREAM), staff_cookie, {"Last-Event-ID": ids[5]}) as events:
        lines, _ = read_lines(events, 100, notices)
    assert [text for _, text in lines] == [f"INFO line {i}" for i in range(200, 300)]
    assert len(notices) == 1
    assert "trimmed away" in notices[0]
    notices.clear()
    with sse(server.url(STREAM), staff_cookie, {"Last-Event-ID": ids[250]}) as events:
        lines, _ = read_lines(events, 49, notices)
    assert [text for _, text in lines] == [f"INFO line {i}" for i in range(251, 300)]
    assert notices == []
    malformed = httpx.get(
        server.url(STREAM), headers={"Cookie": staff_cookie, "Last-Event-ID": "5:7"}
    )
    assert malformed.status_code == 400


def test_redis_restarted_while_a_client_watches_loses_and_repeats_nothing(
    server: LiveServer, redis_server: RedisProcess, tmp_path: Path, staff_cookie: str
):
    log = tmp_path / "app.log"
    with (
        shipping(redis_server.url, "web", log, "web-1") as shipper,
        sse(server.url(STREAM + "&backfill=0"), staff_cookie) as events,
    ):
        notices: list[str] = []
        read_lines(events, 0)
        write_lines(log, ["INFO before"])
        assert read_lines(events, 1, notices)[0] == [("web-1", "INFO before")]
        redis_server.stop()
        write_lines(log, ["INFO during 1", "INFO during 2"])
        wait_until(lambda: shipper.logged("Redis is unreachable"), 30.0, "the shipper retries")
        redis_server.start()
        lines, _ = read_lines(events, 2, notices)
        write_lines(log, ["INFO after"])
        lines += read_lines(events, 1, notices)[0]
    assert lines == [
        ("web-1", "INFO during 1"),
        ("web-1", "INFO during 2"),
        ("web-1", "INFO after"),
    ]
    assert any("unreachable" in notice for notice in notices)


def test_the_pages_and_the_overview_show_a_redis_source(
    server: LiveServer, redis_server: RedisProcess, staff_cookie: str
):
    add(redis_server, ["INFO already there"])
    cookie = {"Cookie": staff_cookie}
    for page in ("/logs/", "/logs/web/", "/"):
        assert httpx.get(server.url(page), headers=cookie).status_code == 200, page
    head = httpx.head(server.url("/logs/web/download"), headers=cookie)
    assert head.status_code == 200
    assert head.headers["content-disposition"] == 'attachment; filename="web.log"'
    with sse(server.url("/streams/overview/"), staff_cookie) as events:
        assert "INFO already there" in next(events).data  # the card at connect
        add(redis_server, ["ERROR a new one"], host="web-2")
        card = next(e for e in events if "ERROR a new one" in e.data)
    assert card.event == "source-web"
