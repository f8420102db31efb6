"""The production server (streams/server.py) over real sockets: flow control, aborts, keep-alive.

Every test talks to a real ``manage.py serve`` process. The streaming endpoint
is the NDJSON export (2,000 rows per body chunk); the server's memory and CPU
time come from its /proc entries.
"""

from __future__ import annotations

import datetime
import io
import os
import select
import socket
import struct
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command

from dashboard.models import Order
from tests.support.demo_orders import make_customer, make_order, make_orders
from tests.support.http_body import ChunkedDecoder, get, parse_head, read_head
from tests.support.live import LiveServer
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

URL = "/exports/dashboard.order.ndjson"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def seed(rows: int) -> None:
    call_command("seed_demo", rows=rows, stdout=io.StringIO(), stderr=io.StringIO())


def seed_wide(rows: int, note_chars: int = 1_500) -> None:
    """Rows of about ``note_chars`` + 400 bytes of NDJSON: many MiB of body, quickly."""
    customer = make_customer()
    Order.objects.bulk_create(
        (
            Order(
                reference=f"W-{n:08d}",
                customer=customer,
                quantity=n,
                amount=Decimal(n).scaleb(-2),
                note=f"{n:08d}" * (note_chars // 8),
                placed_on=datetime.date(2024, 3, 1),
            )
            for n in range(rows)
        ),
        batch_size=2_000,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def wait_until_idle(server: LiveServer, timeout: float = 30.0) -> None:
    """Wait until the server stops using CPU: it has done all it will do for now.

    Idle means less than 20 ms of CPU over a 0.5 s window (daphne's timers
    use far less); a server still producing or buffering uses all of it.
    """
    window: list[tuple[float, float]] = []

    def idle() -> bool:
        now = time.monotonic()
        window.append((now, cpu_seconds(server.pid)))
        while window[0][0] < now - 0.5:
            oldest = window.pop(0)
            if window[-1][1] - oldest[1] < 0.02:
                return True
        return False

    wait_until(idle, timeout, "the server went idle", step=0.05)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Connection:
    """One raw HTTP/1.1 connection: requests one after another, chunked bodies read as they come."""

    def __init__(self, server: LiveServer, cookie: str, *, receive_buffer: int | None = None):
        self.sock = socket.socket()
        if receive_buffer is not None:
            # Before connect, so the TCP window is small: the server's kernel
            # buffers stay small and the test measures what the server holds.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(60)
        self.sock.connect((server.host, server.port))
        self.server = server
        self.cookie = cookie
        self.pending = b""

    def close(self, *, reset: bool = False) -> None:
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def request(self, path: str) -> None:
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {self.server.host}\r\n"
            f"Cookie: {self.cookie}\r\n\r\n".encode()
        )

    def read_head(self) -> dict[str, str]:
        head, self.pending = read_head(self.sock, self.pending, timeout=60)
        status, headers = parse_head(head)
        return {"status": str(status), **headers}

    def read_body(self) -> bytes:
        """The rest of a chunked body; the bytes after it stay for the next response."""
        decoder = ChunkedDecoder()
        decoder.feed(self.pending)
        while not decoder.complete:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed before the terminating chunk")
            decoder.feed(data)
        self.pending = decoder.buffer
        return bytes(decoder.body)


def test_a_client_that_stops_reading_does_not_make_the_server_buffer_the_response(
    live: LiveServer, superuser_cookie: str
) -> None:
    """Without flow control the server grows by about the whole body (57 MiB of 59 measured)."""
    seed(150_000)
    ids = list(Order.objects.order_by("pk").values_list("pk", flat=True))
    warm_up = get(live, f"{URL}?after={ids[-5_001]}", superuser_cookie)  # full-size chunks, once
    assert warm_up.body.count(b"\n") == 5_000
    wait_until_idle(live)
    before = live.rss_kib()

    client = Connection(live, superuser_cookie)
    try:
        client.request(URL)
        assert client.read_head()["status"] == "200"
        wait_until_idle(live)  # the server is now blocked on the paused transport
        growth_mib = (live.rss_kib() - before) / 1024
        assert growth_mib < 20, (
            f"the server buffered {growth_mib:.0f} MiB for a client that stopped reading"
        )
        body = client.read_body()
    finally:
        client.close()
    assert len(body) > 50 * 2**20, "the body must dwarf the allowed growth"
    assert [orjson.loads(line)["id"] for line in body.splitlines()] == ids


def test_a_client_gone_mid_stream_frees_its_connection_and_others_are_still_served(
    live: LiveServer, superuser_cookie: str
) -> None:
    seed_wide(10_000)
    first = get(live, URL, superuser_cookie)
    assert first.complete
    wait_until_idle(live)
    fds_before = open_fds(live.pid)

    stalled = Connection(live, superuser_cookie, receive_buffer=64 * 1024)
    stalled.request(URL)
    assert stalled.read_head()["status"] == "200"
    stalled.sock.recv(65536)  # some body arrived, then the client stops reading
    wait_until_idle(live)
    assert open_fds(live.pid) > fds_before
    stalled.close(reset=True)

    # The server closes its end and drops the stalled request: every file
    # descriptor it opened (its socket, any database file) is released...
    wait_until(lambda: open_fds(live.pid) <= fds_before, 10, "the server freed the connection")
    # ...and serves everyone else in full.
    again = get(live, URL, superuser_cookie)
    assert again.complete
    assert again.body == first.body


def test_a_failure_after_the_first_chunk_resets_the_connection_without_a_last_chunk(
    live: LiveServer, superuser_cookie: str
) -> None:
    customer = make_customer()
    make_orders(5_000)
    # orjson cannot encode an integer beyond 64 bits: the third chunk fails.
    make_order(customer, 5_001, metadata={"too_big": 2**70})
    started = time.monotonic()
    response = get(live, URL, superuser_cookie, timeout=10)
    assert response.status == 200
    assert response.closed_by_server
    assert not response.complete
    # Two chunks of 2,000 rows went out; the abort drops what Twisted still buffered.
    assert 2_000 <= response.body.count(b"\n") <= 4_000
    # Aborted as the application fails, not by a timeout.
    assert time.monotonic() - started < 5
    fine = get(live, f"{URL}?status=shipped", superuser_cookie)
    assert fine.complete
    assert fine.body.count(b"\n") == Order.objects.filter(status="shipped").count()


def test_requests_on_one_keep_alive_connection_are_all_answered(
    live: LiveServer, superuser_cookie: str
) -> None:
    seed_wide(8_000)
    client = Connection(live, superuser_cookie)
    try:
        client.request(URL)
        head = client.read_head()
        assert head["status"] == "200"
        # A slow start: the transport pauses the response, so this request
        # registers and unregisters its producer on the shared channel.
        wait_until_idle(live)
        big = client.read_body()
        assert big.count(b"\n") == 8_000

        # Two more, pipelined: each needs its own producer on the same channel.
        ids = list(Order.objects.order_by("pk").values_list("pk", flat=True))
        client.request(f"{URL}?id__lte={ids[2]}")
        client.request(f"{URL}?after={ids[-3]}")
        for expected_ids in (ids[:3], ids[-2:]):
            assert client.read_head()["status"] == "200"
            rows = [orjson.loads(line) for line in client.read_body().splitlines()]
            assert [row["id"] for row in rows] == expected_ids
    finally:
        client.close()


def listen_backlog(port: int) -> int:
    """The accept queue size of the listening socket (``ss`` shows it as Send-Q)."""
    output = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    (line,) = output.strip().splitlines()
    return int(line.split()[2])


def test_the_server_listens_with_a_deep_backlog(live: LiveServer) -> None:
    assert listen_backlog(live.port) >= 1024


def test_many_simultaneous_connections_are_accepted_at_once(live: LiveServer) -> None:
    """1,000 connects complete without SYN retries (a full backlog of 50 costs a second)."""
    sockets: list[socket.socket] = []
    started = time.monotonic()
    try:
        for _ in range(1_000):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((live.host, live.port))
            sockets.append(sock)
        poller = select.poll()  # select() cannot take descriptors above 1023
        for sock in sockets:
            poller.register(sock, select.POLLOUT)
        waiting = {sock.fileno() for sock in sockets}
        deadline = started + 5
        while waiting and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                poller.unregister(fd)
                waiting.discard(fd)
        assert not waiting
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for sock in sockets)
        assert time.monotonic() - started < 0.9
    finally:
        for sock in sockets:
            sock.close()
