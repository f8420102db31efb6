"""The repository's deploy/nginx.conf in front of two real servers, over TLS.

A private nginx (``tests.support.services.nginx_server``) runs the file with
only its ``# EDIT`` values replaced: the upstream is two ``manage.py serve
--proxy-headers`` processes, static files come from a STATIC_ROOT filled by
``collectstatic``. Skipped with the reason when nginx or openssl is missing
(a failure under ``STREAMBOARD_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from httpx_sse import EventSource

from tests.http.test_server import seed_wide, wait_until_idle
from tests.support.http_body import ChunkedDecoder
from tests.support.live import LiveServer, run_server
from tests.support.personas import session_cookie
from tests.support.services import Nginx, deploy_site, nginx_server, skip_or_fail

pytestmark = [pytest.mark.live, pytest.mark.services]

ROWS = 30_000  # about 55 MiB of NDJSON through the proxy


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text("INFO first line\n")
    return path


@pytest.fixture
def static_root(tmp_path: Path, settings: Any) -> Path:
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    return Path(settings.STATIC_ROOT)


@pytest.fixture
def servers(transactional_db: None, log: Path) -> Iterator[list[LiveServer]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                run_server(env={"STREAMBOARD_LOGS": f"test={log}"}, args=["--proxy-headers"])
            )
            for _ in range(2)
        ]


@pytest.fixture
def nginx(servers: list[LiveServer], static_root: Path) -> Iterator[Nginx]:
    upstreams = [f"{server.host}:{server.port}" for server in servers]
    with nginx_server(lambda nginx: deploy_site(nginx, upstreams, static_root)) as nginx:
        yield nginx


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def tls_context(nginx: Nginx) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(nginx.cert))


def test_an_sse_log_line_arrives_through_nginx_within_a_second(
    nginx: Nginx, log: Path, cookie: str
) -> None:
    timeout = httpx.Timeout(10.0, connect=5.0)
    url = nginx.url("/streams/logs/test/?backfill=1&format=json")
    with (
        httpx.Client(verify=tls_context(nginx), timeout=timeout) as client,
        client.stream("GET", url, headers={"Cookie": cookie}) as response,
    ):
        assert response.status_code == 200
        events = (e for e in EventSource(response).iter_sse() if e.event == "lines")
        assert json.loads(next(events).data)["lines"][0]["text"] == "INFO first line"
        written = time.monotonic()
        with log.open("a") as f:
            f.write("ERROR through the proxy\n")
        event = next(events)
        elapsed = time.monotonic() - written
    assert json.loads(event.data)["lines"][0]["text"] == "ERROR through the proxy"
    assert elapsed < 1.0, f"the line took {elapsed:.2f}s: something buffers"


def https_get_head(nginx: Nginx, path: str, cookie: str) -> tuple[ssl.SSLSocket, bytes]:
    """A raw HTTP/1.1 GET over TLS; returns the socket and what followed the head."""
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=60)
    sock = tls_context(nginx).wrap_socket(raw, server_hostname="localhost")
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{nginx.https_port}\r\n"
        f"Cookie: {cookie}\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    return sock, rest


def test_an_ndjson_export_through_nginx_keeps_server_memory_bounded(
    nginx: Nginx, servers: list[LiveServer], cookie: str
) -> None:
    seed_wide(ROWS)
    for server in servers:
        wait_until_idle(server)
    before = sum(server.rss_kib() for server in servers)

    sock, rest = https_get_head(nginx, "/exports/dashboard.order.ndjson", cookie)
    with sock:
        # The client stops reading: nginx must stop reading from the server, and the
        # server's send must wait, instead of anyone holding the rest of the export.
        for server in servers:
            wait_until_idle(server)
        growth_mib = (sum(server.rss_kib() for server in servers) - before) / 1024
        assert growth_mib < 20, f"the servers grew by {growth_mib:.0f} MiB for a stalled client"
        assert not [p for p in (nginx.prefix / "tmp").rglob("*") if p.is_file()], (
            "nginx spooled the response to a temporary file"
        )
        decoder = ChunkedDecoder()
        decoder.feed(rest)
        while not decoder.complete:
            data = sock.recv(1 << 20)
            assert data, "closed before the terminating chunk"
            decoder.feed(data)
    body = bytes(decoder.body)
    assert len(body) > 50 * 2**20, "the body must dwarf the allowed growth"
    assert body.count(b"\n") == ROWS


def test_browsers_get_http2(nginx: Nginx, cookie: str) -> None:
    context = tls_context(nginx)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        assert sock.selected_alpn_protocol() == "h2"

    curl = shutil.which("curl")
    if not curl:
        skip_or_fail("curl is not installed (needed for a request over HTTP/2)")
    assert curl
    result = subprocess.run(
        [
            *(curl, "--silent", "--show-error", "--http2", "--cacert", str(nginx.cert)),
            *("--header", f"Cookie: {cookie}", "--output", "/dev/null"),
            *("--write-out", "%{http_version} %{http_code}", nginx.url("/logs/")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == "2 200"


def test_static_files_come_from_static_root(nginx: Nginx, static_root: Path) -> None:
    only_here = static_root / "only-in-static-root.txt"
    only_here.write_text("served by nginx\n")
    with httpx.Client(verify=tls_context(nginx)) as client:
        css = client.get(nginx.url("/static/streamboard/app.css"))
        marker = client.get(nginx.url("/static/only-in-static-root.txt"))
    assert css.status_code == 200
    assert css.content == (static_root / "streamboard" / "app.css").read_bytes()
    # Django's static handler serves from the app directories, not STATIC_ROOT:
    # only nginx can have answered this one.
    assert marker.status_code == 200
    assert marker.text == "served by nginx\n"


def test_a_form_post_through_nginx_passes_csrf_with_the_forwarded_scheme(
    nginx: Nginx, superuser: User
) -> None:
    with httpx.Client(verify=tls_context(nginx), base_url=nginx.url("")) as client:
        page = client.get("/admin/login/")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert found
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": found.group(1),
                "username": "root",
                "password": "root-password",
                "next": "/admin/",
            },
            headers={"Origin": nginx.url("").rstrip("/"), "Referer": nginx.url("/admin/login/")},
        )
    # Without --proxy-headers Django would see http:// and refuse the https origin (403).
    assert response.status_code == 302, response.text[:300]
    assert response.headers["location"] == "/admin/"
