"""A restartable private Redis, ``ship_log`` processes and readers of what they shipped.

``RedisProcess`` keeps its data in an append-only file fsynced on every
write, so a test can stop it by process id and start it again on the same
port with everything it had: a restart, not a new Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from httpx_sse import EventSource, ServerSentEvent

from streams.logs.redis.shipper import Shipper
from streams.logs.redis.stream import connect
from tests.support.live import ROOT, free_port, stop
from tests.support.services import skip_or_fail
from tests.support.wait import async_wait_until, wait_until

READY_TIMEOUT = 30.0


class RedisProcess:
    """``redis-server`` on a free port in a temporary directory, with an fsynced AOF."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="streamboard-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.dir), "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "always"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self.process

        def pong() -> bool:
            if process.poll() is not None:
                raise RuntimeError("redis-server exited at start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, 30.0, "Redis answers PING", step=0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


@contextmanager
def redis_process() -> Iterator[RedisProcess]:
    binary = shutil.which("redis-server")
    if not binary:
        skip_or_fail("redis-server is not installed")
    assert binary
    server = RedisProcess(binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


class ShipperProcess:
    """A running ``manage.py ship_log``; its log (stderr) goes to a file the test can read."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def shipping(
    url: str, name: str, path: Path, host: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[ShipperProcess]:
    """Start ``ship_log NAME PATH --host HOST`` and wait for its ready line."""
    log = Path(tempfile.mkstemp(prefix="ship-log-", suffix=".err")[1])
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "ship_log", name, str(path), "--host", host, *extra],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": url, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline() if readable else b""
        if b"ship_log: shipping" not in line:
            raise RuntimeError(f"ship_log did not start: {line!r} {log.read_text()}")
        yield ShipperProcess(process, log)
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()
        log.unlink(missing_ok=True)


def entries(client: redis.Redis, name: str) -> list[tuple[str, dict[str, str]]]:
    """Every entry of the source's stream, oldest first."""
    return list(client.xrange(f"streamboard:log:{name}", "-", "+"))  # type: ignore[arg-type]


def shipped_lines(client: redis.Redis, name: str, host: str | None = None) -> list[str]:
    """The ``line`` entries' texts (of one host, or all), oldest first."""
    return [
        fields["line"]
        for _, fields in entries(client, name)
        if "line" in fields and (host is None or fields["host"] == host)
    ]


def write_lines(path: Path, texts: list[str]) -> None:
    with path.open("a") as f:
        f.write("".join(text + "\n" for text in texts))


@contextmanager
def sse(
    url: str, cookie: str, headers: dict[str, str] | None = None, timeout: float = 15.0
) -> Iterator[Iterator[ServerSentEvent]]:
    """The events of a live stream as they arrive (httpx-sse), the opening ``retry:`` left out."""
    with (
        httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
        client.stream("GET", url, headers={"Cookie": cookie, **(headers or {})}) as response,
    ):
        assert response.status_code == 200, response.read()
        yield (e for e in EventSource(response).iter_sse() if e.data or e.event != "message")


def read_lines(
    events: Iterator[ServerSentEvent], count: int, notices: list[str] | None = None
) -> tuple[list[tuple[str, str]], str]:
    """``(host, text)`` of the next ``count`` lines (``format=json``), and the last event's id."""
    lines: list[tuple[str, str]] = []
    last_id = ""
    for event in events:
        data = json.loads(event.data)
        if event.event == "notice" and notices is not None:
            notices.append(data["notice"])
        elif event.event == "lines":
            lines += [(line.get("host", ""), line["text"]) for line in data["lines"]]
        last_id = event.id or last_id
        if len(lines) >= count:
            return lines, last_id
    raise AssertionError(f"the stream ended after {lines}")


async def ship(redis_url: str, stream: str, log: Path, lines: list[str]) -> None:
    """Ship ``lines`` with the real shipper until Redis holds every one."""
    await asyncio.to_thread(write_lines, log, lines)
    client = connect(redis_url)
    shipper = Shipper(client, stream, log, "web-1", watcher="poll")
    task = asyncio.create_task(shipper.run())
    try:
        await async_wait_until(
            lambda: shipper.shipped_lines == len(lines), what="the lines shipped"
        )
    finally:
        shipper.stop()
        await task
        await client.aclose()
