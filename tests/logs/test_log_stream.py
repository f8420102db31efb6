"""The log stream views in-process: the ASGI application called directly, then a disconnect.

These prove the lifecycle the real server cannot show from outside: when the
client goes away, the producer's ``finally:`` ran, the subscription is gone
and the shared tailer stopped.
"""

# The tests write the followed file from the event loop on purpose.
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dashboard.asgi import application
from streams.logs.files.tailer import Tailer, active_tailers

WAIT = 10.0

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class AsgiCall:
    """One request to the ASGI app, with the body frames as they are sent."""

    task: asyncio.Task[None]
    disconnect: asyncio.Event
    messages: asyncio.Queue[dict[str, Any]]
    body: bytearray = field(default_factory=bytearray)
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        async with asyncio.timeout(WAIT):
            message = await self.messages.get()
        assert message["type"] == "http.response.start"
        self.status = message["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}

    async def read_until(self, predicate: Callable[[bytes], bool]) -> bytes:
        async with asyncio.timeout(WAIT):
            while not predicate(bytes(self.body)):
                message = await self.messages.get()
                self.body += message.get("body", b"")
        return bytes(self.body)

    async def hang_up(self) -> None:
        self.disconnect.set()
        async with asyncio.timeout(WAIT):
            await self.task


def call(
    path: str, cookie: str, query: str = "", headers: dict[str, str] | None = None
) -> AsgiCall:
    disconnect = asyncio.Event()
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await messages.put(message)

    raw_headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    app: Callable[..., Coroutine[Any, Any, None]] = application
    task: asyncio.Task[None] = asyncio.create_task(app(scope, receive, send))
    return AsgiCall(task, disconnect, messages)


def events_in(body: bytes) -> list[dict[str, str]]:
    """Complete SSE events in ``body`` (fields joined as the WHATWG parser would)."""
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        event: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(": ")
            event[name] = event[name] + "\n" + value if name in event else value
        if "data" in event:
            events.append(event)
    return events


def tailers_of(path: Path) -> list[Tailer]:
    return [t for t in active_tailers() if t.path == path]


@pytest.fixture
def log(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"test": path, "other": tmp_path / "other.log"}
    return path


async def test_disconnect_runs_cleanup_and_stops_the_tailer(log: Path, staff_cookie: str):
    log.write_text("INFO one\nERROR two\n")
    request = call("/streams/logs/test/", staff_cookie, "backfill=5&format=json")
    await request.start()
    assert request.status == 200
    assert request.headers["content-type"].startswith("text/event-stream")
    body = await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    (first,) = events_in(body)
    assert json.loads(first["data"]) == {
        "lines": [{"text": "INFO one", "level": "info"}, {"text": "ERROR two", "level": "error"}]
    }
    (tailer,) = tailers_of(log)
    assert tailer.subscriber_count == 1
    with log.open("a") as f:
        f.write("WARNING three\n")
    body = await request.read_until(lambda b: b"three" in b)
    await request.hang_up()
    assert tailer.subscriber_count == 0
    assert tailer.stopped
    assert tailers_of(log) == []


async def test_two_clients_share_one_tailer_until_both_leave(log: Path, staff_cookie: str):
    log.write_text("")
    a = call("/streams/logs/test/", staff_cookie)
    b = call("/streams/logs/test/", staff_cookie, "level=error")
    for request in (a, b):
        await request.start()
        await request.read_until(lambda body: b"event: lines" in body)
    (tailer,) = tailers_of(log)
    assert tailer.subscriber_count == 2
    await a.hang_up()
    assert tailer.subscriber_count == 1
    await b.hang_up()
    assert tailer.subscriber_count == 0


async def test_last_event_id_header_resumes_in_process(log: Path, staff_cookie: str):
    log.write_text("one\n")
    first = call("/streams/logs/test/", staff_cookie, "backfill=0")
    await first.start()
    body = await first.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    cursor = events_in(body)[0]["id"]
    await first.hang_up()
    with log.open("a") as f:
        f.write("two\n")
    resumed = call(
        "/streams/logs/test/", staff_cookie, "format=json", headers={"Last-Event-ID": cursor}
    )
    await resumed.start()
    body = await resumed.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    await resumed.hang_up()
    assert json.loads(events_in(body)[0]["data"]) == {"lines": [{"text": "two", "level": "info"}]}


async def test_text_stream_sends_plain_lines(log: Path, staff_cookie: str):
    log.write_text("alpha\nbeta\n")
    request = call("/streams/logs/test.txt", staff_cookie, "backfill=1")
    await request.start()
    assert request.headers["content-type"].startswith("text/plain")
    body = await request.read_until(lambda b: b"beta\n" in b)
    await request.hang_up()
    assert body == b"beta\n"
    assert tailers_of(log) == []


async def test_overview_sends_a_card_per_source_and_cleans_up(log: Path, staff_cookie: str):
    log.write_text("ERROR the latest line\n")
    request = call("/streams/overview/", staff_cookie)
    await request.start()
    body = await request.read_until(
        lambda b: b"event: source-test" in b and b"event: source-other" in b
    )
    events = {e["event"]: e for e in events_in(body)}
    assert "the latest line" in events["source-test"]["data"]
    assert "/logs/test/" in events["source-test"]["data"]
    assert "does not exist yet" in events["source-other"]["data"]
    with log.open("a") as f:
        f.write("WARNING a newer line\n")
    await request.read_until(lambda b: b"a newer line" in b)
    await request.hang_up()
    assert tailers_of(log) == []
