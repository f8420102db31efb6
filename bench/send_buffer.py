#!/usr/bin/env python3
"""How many bytes a streaming response gets ahead of a slow client, per kernel setting.

    .venv/bin/python bench/send_buffer.py

For each setting (the kernel's autotuning, ``TCP_NOTSENT_LOWAT`` at several
values, a fixed ``SO_SNDBUF``), a ``StreamboardServer`` in a child process
streams 64 KiB body chunks as fast as its ``send`` lets it, counting the
bytes handed to ``send``. A client on loopback then:

* reads at about 100 KB/s for ``--slow-seconds``: "ahead" is what the
  application has sent minus what the client has read, i.e. everything
  queued in Twisted, the server's kernel send queue and the client's
  receive queue; its maximum over the run is reported with the two
  kernel queues at that moment (``tx_queue`` of the server's socket from
  /proc/net/tcp, ``FIONREAD`` on the client's);
* stops reading: the same figure once the server has stopped sending;
* reads as fast as it can for 3 s: throughput, so a bound that costs a fast
  client its speed shows.
"""

from __future__ import annotations

import argparse
import fcntl
import multiprocessing
import os
import select
import socket
import sys
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.processes import server_side_queue  # noqa: E402

CHUNK = 64 * 1024
SETTINGS: list[tuple[str, int | None, int | None]] = [
    ("autotuned (no option)", None, None),
    ("TCP_NOTSENT_LOWAT 16 KiB", 16 * 1024, None),
    ("TCP_NOTSENT_LOWAT 64 KiB", 64 * 1024, None),
    ("TCP_NOTSENT_LOWAT 128 KiB", 128 * 1024, None),
    ("TCP_NOTSENT_LOWAT 256 KiB", 256 * 1024, None),
    ("SO_SNDBUF 128 KiB", None, 128 * 1024),
]


def serve(port: int, lowat: int | None, sndbuf: int | None, sent: Any, ready: Any) -> None:
    from streams.http.server import StreamboardServer, endpoint

    class Server(StreamboardServer):
        notsent_lowat = lowat

        def bound_kernel_buffer(self, protocol: Any) -> None:
            super().bound_kernel_buffer(protocol)
            if sndbuf is not None:
                handle = protocol.channel.transport.getHandle()
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * CHUNK
        while True:
            sent.value += len(chunk)  # handed to the server, whether or not send then waits
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    Server(
        application=app,
        endpoints=[endpoint("127.0.0.1", port, 16)],
        ready_callable=ready.set,
        verbosity=0,
    ).run()


def unread(sock: socket.socket) -> int:
    return int.from_bytes(fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"), "little")


def measure(label: str, lowat: int | None, sndbuf: int | None, slow_seconds: float) -> str:
    context = multiprocessing.get_context("fork")
    sent, ready = context.Value("q", 0), context.Event()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = context.Process(target=serve, args=(port, lowat, sndbuf, sent, ready), daemon=True)
    server.start()
    ready.wait(30)
    try:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        # Slow: 10 KB every 0.1 s.
        worst = (0, 0, 0)
        start = time.monotonic()
        tick = start
        while time.monotonic() - start < slow_seconds:
            tick += 0.1
            time.sleep(max(0.0, tick - time.monotonic()))
            received += len(sock.recv(10_000))
            ahead = sent.value - received
            if ahead > worst[0]:
                worst = (ahead, server_side_queue(sock) or 0, unread(sock))
        # Stalled: wait until the application stops getting its sends through.
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            time.sleep(0.05)
            if sent.value != last:
                last, stable_since = sent.value, time.monotonic()
        stalled = (sent.value - received, server_side_queue(sock) or 0, unread(sock))
        # Fast: as fast as possible for 3 s.
        before, start = received, time.monotonic()
        while time.monotonic() - start < 3.0:
            select.select([sock], [], [], 1)
            received += len(sock.recv(1 << 20))
        rate = (received - before) / (time.monotonic() - start) / 2**20
        sock.close()
    finally:
        server.kill()
        server.join()

    def kib(triple: tuple[int, int, int]) -> str:
        return " | ".join(f"{value / 1024:,.0f}" for value in triple)

    return f"| {label} | {kib(worst)} | {kib(stalled)} | {rate:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow-seconds", type=float, default=6.0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    print(
        "| setting | slow: ahead KiB | server tx_queue KiB | client unread KiB "
        "| stalled: ahead KiB | tx_queue KiB | unread KiB | fast MiB/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, lowat, sndbuf in SETTINGS:
        print(measure(label, lowat, sndbuf, args.slow_seconds), flush=True)


if __name__ == "__main__":
    main()
