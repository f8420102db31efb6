"""The kernel does not hide backpressure: a stalled client holds little in the kernel.

Without ``TCP_NOTSENT_LOWAT`` the server's socket autotunes its send buffer
on loopback and takes about 2.7 MiB of a stream that nobody reads before
``send`` ever waits (bench/send_buffer.py). With it, what the server put
into the kernel before it stopped is bounded by the option plus the
client's receive window.
"""

from __future__ import annotations

import fcntl
import socket
import termios

import pytest
from django.contrib.auth.models import User

from streams.http.server import NOTSENT_LOWAT
from tests.http.test_server import Connection, seed_wide, wait_until_idle
from tests.support.live import LiveServer
from tests.support.personas import session_cookie
from tests.support.processes import server_side_queue

pytestmark = pytest.mark.live

URL = "/exports/dashboard.order.ndjson"


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def unread(sock: socket.socket) -> int:
    return int.from_bytes(fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"), "little")


def test_a_stalled_client_makes_send_wait_before_the_kernel_holds_megabytes(
    live: LiveServer, cookie: str
) -> None:
    seed_wide(5_000)  # about 10 MiB of NDJSON: far more than any buffer involved
    client = Connection(live, cookie)  # the kernel's default receive buffer, as a browser's
    try:
        client.request(URL)
        assert client.read_head()["status"] == "200"
        wait_until_idle(live)  # the export's ``send`` now waits on the paused transport
        server_queue = server_side_queue(client.sock)
        assert server_queue is not None
        # Everything the server's kernel accepted before send waited: what the
        # client already has, what waits in its receive queue, what is still queued
        # on the server's socket. (Twisted's own buffer adds at most 128 KiB more.)
        in_kernel = len(client.pending) + unread(client.sock) + server_queue
        assert server_queue < 2 * NOTSENT_LOWAT + 64 * 1024, f"{server_queue} bytes queued"
        assert in_kernel < 1024 * 1024, f"{in_kernel} bytes in the kernel for a stalled client"
        body = client.read_body()
    finally:
        client.close()
    assert body.count(b"\n") == 5_000
