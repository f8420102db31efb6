"""Real services for tests: what to do when one is missing.

Here a missing service skips; in CI (``STREAMBOARD_REQUIRE_SERVICES=1``, set
by ``.ci/run``) it fails, so a green CI run has really used every service.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.live import ROOT, free_port, stop
from tests.support.wait import wait_until

REQUIRE_SERVICES = os.environ.get("STREAMBOARD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STREAMBOARD_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _find_postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL on a free port in a temporary directory; yields its URL.

    PostgreSQL refuses to run as root, so as root the server runs as the
    ``postgres`` user. It is stopped by process id, never by a service manager.
    """
    initdb, postgres = _find_postgres_bin("initdb"), _find_postgres_bin("postgres")
    if not initdb or not postgres:
        skip_or_fail("PostgreSQL server binaries (initdb, postgres) are not installed")
    assert initdb
    assert postgres
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="streamboard-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if user:
        shutil.chown(base, user)
        shutil.chown(sockets, user)
    port = free_port()
    subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        user=user,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = subprocess.Popen(
        [
            *(postgres, "-D", str(data), "-p", str(port), "-k", str(sockets)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"),
            *("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"),
        ],
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    try:

        def accepting() -> bool:
            if process.poll() is not None:
                raise RuntimeError("postgres exited at start-up")
            try:
                with psycopg.connect(
                    url.replace("postgres://", "postgresql://"), connect_timeout=1
                ):
                    return True
            except psycopg.OperationalError:
                return False

        wait_until(accepting, 30.0, "PostgreSQL accepts connections", step=0.05)
        yield url
    finally:
        stop(process, signal.SIGINT, grace=20)  # SIGINT: PostgreSQL's "fast" shutdown
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A private Redis on a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        skip_or_fail("redis-server is not installed")
    assert binary
    base = Path(tempfile.mkdtemp(prefix="streamboard-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(base)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def pong() -> bool:
            if process.poll() is not None:
                raise RuntimeError("redis-server exited at start-up")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, 30.0, "Redis answers PING", step=0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Nginx:
    """A private nginx: where it lives, its ports, its self-signed certificate."""

    prefix: Path
    https_port: int
    http_port: int
    cert: Path
    key: Path

    def url(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


@contextmanager
def nginx_server(site: Callable[[Nginx], str], worker_connections: int = 1024) -> Iterator[Nginx]:
    """A private nginx on free ports in a temporary prefix, serving ``site(nginx)``.

    ``site`` returns the configuration that goes inside ``http { }`` (the
    repository's deploy/nginx.conf, rendered by ``deploy_site``). The
    certificate for ``localhost``/127.0.0.1 is made by ``openssl`` in the
    prefix. nginx runs in the foreground (``daemon off``) and is stopped by
    process id. A proxied stream holds two connections (the client's and the
    upstream's): a benchmark of N clients needs ``worker_connections`` > 2N.
    """
    binary, openssl = _nginx_binary(), shutil.which("openssl")
    if not binary:
        skip_or_fail("nginx is not installed")
    if not openssl:
        skip_or_fail("openssl is not installed (needed for nginx's test certificate)")
    assert binary
    assert openssl
    prefix = Path(tempfile.mkdtemp(prefix="streamboard-nginx-"))
    nginx = Nginx(prefix, free_port(), free_port(), prefix / "cert.pem", prefix / "key.pem")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(nginx.key), "-out", str(nginx.cert)),
        ],
        check=True,
        capture_output=True,
    )
    (prefix / "tmp").mkdir()
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "site.conf").write_text(site(nginx))
    (prefix / "nginx.conf").write_text(
        f"""daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
worker_rlimit_nofile {2 * worker_connections + 64};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections {worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix / "access.log"};
{temp_paths}
    include {prefix / "site.conf"};
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", "nginx.conf"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            if process.poll() is not None:
                log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
                raise RuntimeError(f"nginx exited at start-up: {log}")
            try:
                with socket.create_connection(("127.0.0.1", nginx.https_port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(listening, 30.0, "nginx accepts connections", step=0.05)
        yield nginx
    finally:
        stop(process, signal.SIGQUIT)  # SIGQUIT: nginx's graceful shutdown
        shutil.rmtree(prefix, ignore_errors=True)


DEPLOY_NGINX = ROOT / "deploy" / "nginx.conf"


def deploy_site(nginx: Nginx, upstreams: list[str], static_root: Path) -> str:
    """deploy/nginx.conf with only its ``# EDIT`` values replaced for this private nginx.

    Every replacement must match exactly once, so a change to the file that the
    test would silently stop covering fails here instead.
    """
    text = DEPLOY_NGINX.read_text()
    servers = "".join(f"    server {address};\n" for address in upstreams)
    for old, new in (
        ("    server 127.0.0.1:8000;\n", servers),
        ("listen 80;", f"listen 127.0.0.1:{nginx.http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{nginx.https_port} ssl http2;"),
        ("ssl_certificate /etc/ssl/streamboard/fullchain.pem;", f"ssl_certificate {nginx.cert};"),
        (
            "ssl_certificate_key /etc/ssl/streamboard/privkey.pem;",
            f"ssl_certificate_key {nginx.key};",
        ),
        ("alias /srv/streamboard/var/static/;", f"alias {static_root}/;"),
    ):
        if text.count(old) != 1:
            raise AssertionError(f"deploy/nginx.conf: {old!r} found {text.count(old)} times")
        text = text.replace(old, new)
    return text
