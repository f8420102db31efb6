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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support.live import free_port, stop
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
