"""``manage.py serve --workers N`` as real processes: shared port, restarts, clean stops.

Which worker accepted a connection is read from /proc (the worker holding
the server end of the socket), so the server exposes nothing for the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.live import ROOT, LiveServer, child_env, run_server
from tests.support.processes import alive, children, in_process_group, socket_owners
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

REQUEST = b"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def workers(transactional_db: None) -> Iterator[LiveServer]:
    with run_server(args=["--workers", "2"]) as server:
        yield server


def worker_pids(server: LiveServer) -> list[int]:
    return children(server.pid)


def answered(sock: socket.socket) -> bool:
    """Read one keep-alive response; the connection stays open."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(65536)
        if not data:
            return False
        raw += data
    head, body = raw.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            return False
        body += data
    return head.startswith(b"HTTP/1.1 200")


def burst(server: LiveServer, connections: int = 40) -> list[int | None]:
    """Open ``connections`` at once, get one answer on each, and say who accepted each."""
    socks = [
        socket.create_connection((server.host, server.port), timeout=30) for _ in range(connections)
    ]
    try:
        for sock in socks:
            sock.sendall(REQUEST)
        assert all(answered(sock) for sock in socks)
        owners = socket_owners(socks, worker_pids(server))
    finally:
        for sock in socks:
            sock.close()
    assert None not in owners, "every connection was accepted by one of the workers"
    return owners


def answering_pids(server: LiveServer, wanted: set[int]) -> set[int]:
    """Bursts until every pid in ``wanted`` has answered at least once (bounded)."""
    seen: set[int] = set()

    def all_seen() -> bool:
        seen.update(pid for pid in burst(server) if pid is not None)
        return wanted <= seen

    wait_until(all_seen, 60, f"workers {sorted(wanted)} each answer a connection", step=0)
    return seen


def test_two_workers_answer_on_one_port(workers: LiveServer) -> None:
    pids = worker_pids(workers)
    assert len(pids) == 2
    assert answering_pids(workers, set(pids)) == set(pids)


def test_a_killed_worker_is_restarted_and_serves(workers: LiveServer) -> None:
    victim, survivor = worker_pids(workers)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(worker_pids(workers)) == 2 and victim not in worker_pids(workers),
        30,
        "the supervisor started a replacement worker",
    )
    (replacement,) = set(worker_pids(workers)) - {survivor}
    # The replacement answers once it is up; until then the survivor serves.
    assert answering_pids(workers, {survivor, replacement}) == {survivor, replacement}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_supervisor_stops_every_worker(
    transactional_db: None, sig: signal.Signals
) -> None:
    with run_server(args=["--workers", "2"]) as server:
        pids = worker_pids(server)
        assert len(pids) == 2
        assert len(burst(server, 4)) == 4
        server.process.send_signal(sig)
        assert server.process.wait(timeout=30) == 0
    assert not [pid for pid in pids if alive(pid)]
    # Each worker led its own process group: nothing of it is left either.
    assert not [member for pid in pids for member in in_process_group(pid)]


def test_workers_die_with_a_killed_supervisor(transactional_db: None) -> None:
    with run_server(args=["--workers", "2"]) as server:
        pids = worker_pids(server)
        assert len(pids) == 2
        server.process.kill()  # no chance to clean up: the kernel's death signal must
        server.process.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids), 30, "the orphaned workers died")


def test_one_worker_serves_in_process(live: LiveServer) -> None:
    with socket.create_connection((live.host, live.port), timeout=30) as sock:
        sock.sendall(REQUEST)
        assert answered(sock)
        assert socket_owners([sock], [live.pid]) == [live.pid]
    assert worker_pids(live) == []


def test_several_processes_refuse_an_in_memory_database() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "serve", "--workers", "2", "--port", "0"],
        cwd=ROOT,
        env=child_env({"DATABASE_URL": "sqlite://:memory:"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "in-memory SQLite database" in result.stderr


def open_stream(server: LiveServer, cookie: str) -> socket.socket:
    """An SSE log stream on a raw socket, read up to its first event."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(
        f"GET /streams/logs/test/?backfill=1&format=json HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Cookie: {cookie}\r\n\r\n".encode()
    )
    received = b""
    while b"event: lines" not in received:
        data = sock.recv(65536)
        assert data, f"the stream ended: {received!r}"
        received += data
    return sock


def test_every_worker_tails_the_log_for_its_own_clients(
    transactional_db: None, staff_cookie: str, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO before\n")
    env = {"STREAMBOARD_LOGS": f"test={log}"}
    with run_server(env=env, args=["--workers", "2"]) as server, ExitStack() as streams:
        pids = worker_pids(server)
        by_worker: dict[int, socket.socket] = {}

        def one_stream_per_worker() -> bool:
            sock = streams.enter_context(open_stream(server, staff_cookie))
            (owner,) = socket_owners([sock], pids)
            assert owner is not None
            by_worker.setdefault(owner, sock)
            return len(by_worker) == 2

        wait_until(one_stream_per_worker, 60, "a stream on each worker", step=0)
        with log.open("a") as f:
            f.write("ERROR seen by every worker\n")
        for sock in by_worker.values():
            received = b""
            while b"ERROR seen by every worker" not in received:
                data = sock.recv(65536)
                assert data, "the stream ended"
                received += data
