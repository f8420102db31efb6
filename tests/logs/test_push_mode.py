"""Push-mode delivery (``streams.http.push``, ``FanOut.push_directly``) on a real server.

A client that keeps up has its lines written to its socket by the fan-out
itself; one that falls behind goes back to its queue (and its ``skipped``
event), then returns to push mode. Which path a client is on is read from
the server (``/streams/logs/<name>/clients``); what it receives must be the
same bytes either way, which a second server with ``STREAMBOARD_PUSH=0``
(every stream on the ordinary ASGI path) proves side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.http_body import get
from tests.support.live import LiveServer
from tests.support.sse import RawEventStream
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

# No heartbeat during a test: heartbeats are timed, lines are not.
QUIET = {"STREAMBOARD_HEARTBEAT_SECONDS": "600"}


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text("INFO start\n")
    return path


def clients(server: LiveServer, cookie: str) -> dict[str, int]:
    response = get(server, "/streams/logs/test/clients", cookie)
    assert response.status == 200, response.body
    found: dict[str, int] = json.loads(response.body)
    return found


def pushed(server: LiveServer, cookie: str, count: int) -> Callable[[], bool]:
    return lambda: clients(server, cookie)["pushed"] == count


def counts(server: LiveServer, cookie: str) -> tuple[int, int]:
    """(live clients, of which in push mode), as the server reports them."""
    found = clients(server, cookie)
    return found["clients"], found["pushed"]


def read_until(stream: RawEventStream, text: str, timeout: float = 30.0) -> None:
    stream.body_until(text.encode(), timeout=timeout)


def append(log: Path, lines: list[str]) -> None:
    with log.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


# Groups of lines, each written in one step: small ones, a JSON line, a
# traceback (continuations), non-ASCII text, one of two slices, a burst of
# several slices (which push mode leaves to the queue), then small again.
STEPS: list[list[str]] = [
    ["INFO one"],
    ["WARNING two", "ERROR three"],
    ['{"level": "INFO", "msg": "json line", "n": 3}'],
    ["ERROR boom", "Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: x"],
    ["INFO caf\u00e9 \u2603 \U0001f600 <b>&amp;</b>"],
    [f"INFO medium {i:04d} " + "m" * 100 for i in range(200)],  # ~22 KiB: two slices
    [f"INFO burst {i:05d} " + "b" * 150 for i in range(2000)],  # ~330 KiB: queue path
    ["INFO after the burst"],
    [f"DEBUG tail {i}" for i in range(50)],
]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/streams/logs/test/?backfill=5&format=json", b"text/event-stream"),
        ("/streams/logs/test/?backfill=5&format=html", b"text/event-stream"),
        ("/streams/logs/test.txt?backfill=5", b"text/plain"),
    ],
    ids=["json", "html", "text"],
)
def test_push_mode_and_the_queue_path_send_identical_bytes_for_the_same_lines(
    live_server_factory: Callable[..., LiveServer],
    log: Path,
    staff_cookie: str,
    path: str,
    content_type: bytes,
) -> None:
    sources = {"STREAMBOARD_LOGS": f"test={log}", **QUIET}
    pushing = live_server_factory(env=sources)
    queueing = live_server_factory(env={**sources, "STREAMBOARD_PUSH": "0"})
    with (
        RawEventStream(pushing, path, staff_cookie, content_type=content_type) as push_client,
        RawEventStream(queueing, path, staff_cookie, content_type=content_type) as queue_client,
    ):
        read_until(push_client, "INFO start")
        read_until(queue_client, "INFO start")
        wait_until(pushed(pushing, staff_cookie, 1), what="the client in push mode")
        assert counts(queueing, staff_cookie) == (1, 0)
        for number, step in enumerate(STEPS):
            marker = f"end-of-step-{number}"
            append(log, [*step, f"INFO {marker}"])
            # Both have the step before the next is written: a client that keeps up.
            read_until(push_client, marker)
            read_until(queue_client, marker)
            wait_until(pushed(pushing, staff_cookie, 1), what="back in push mode after a step")
        assert push_client.body == queue_client.body
        assert push_client.body.count(b"end-of-step-") == len(STEPS)
    # The last line went out in push mode (not only the first ones).
    assert b"DEBUG tail 49" in push_client.body


def test_a_client_that_falls_behind_leaves_push_mode_skips_then_returns_to_it(
    live_server_factory: Callable[..., LiveServer], log: Path, staff_cookie: str
) -> None:
    server = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log}", **QUIET})
    path = "/streams/logs/test/?backfill=0&format=json"
    # 4 KiB receive buffer: a client that stops reading fills its socket quickly.
    with (
        RawEventStream(server, path, staff_cookie, receive_buffer=4096) as client,
        RawEventStream(server, path, staff_cookie) as watcher,
    ):
        client.events_until(lambda e: e.event == "lines")
        watcher.events_until(lambda e: e.event == "lines")
        wait_until(pushed(server, staff_cookie, 2), what="both clients in push mode")
        line = "INFO steady " + "s" * 180
        written = 0

        def step() -> None:
            # One publish each: the watcher, reading at full speed, has it
            # before the next is written.
            nonlocal written
            append(log, [f"{line} {written + i:06d}" for i in range(40)])
            written += 40
            read_until(watcher, f"{line} {written - 1:06d}")

        # The client stops reading; the log goes on in small steps (each well
        # under a push frame's bound) until its socket refuses and it is queued.
        while counts(server, staff_cookie) == (2, 2):
            step()
            assert written < 100_000, "never left push mode"
        # Then enough that its bounded queue (128 KiB) overflows.
        for _ in range(40):
            step()
        # The watcher, keeping up, stayed in push mode throughout.
        assert counts(server, staff_cookie) == (2, 1)
        append(log, ["INFO newest line"])
        events = client.events_until(lambda e: "INFO newest line" in e.data, timeout=60)
        assert "skipped" in [event.event for event in events]
        # Caught up: it returns to push mode, and new lines come that way.
        wait_until(pushed(server, staff_cookie, 2), what="back in push mode")
        append(log, ["INFO pushed again"])
        read_until(client, "INFO pushed again")
        read_until(watcher, "INFO pushed again")
        assert counts(server, staff_cookie) == (2, 2)


def test_a_filtered_client_stays_on_its_queue_beside_a_pushed_one(
    live_server_factory: Callable[..., LiveServer], log: Path, staff_cookie: str
) -> None:
    server = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log}", **QUIET})
    with (
        RawEventStream(server, "/streams/logs/test/?backfill=0&format=json", staff_cookie) as plain,
        RawEventStream(
            server, "/streams/logs/test/?backfill=0&format=json&level=error", staff_cookie
        ) as errors,
    ):
        plain.events_until(lambda e: e.event == "lines")
        errors.events_until(lambda e: e.event == "lines")
        wait_until(lambda: clients(server, staff_cookie)["clients"] == 2)
        append(log, ["INFO not for the filter", "ERROR for both"])
        read_until(plain, "ERROR for both")
        read_until(errors, "ERROR for both")
        assert b"INFO not for the filter" not in errors.body
        assert b"INFO not for the filter" in plain.body
        assert counts(server, staff_cookie) == (2, 1)


def test_an_idle_pushed_client_gets_heartbeats_from_the_fan_outs_timer(
    live_server_factory: Callable[..., LiveServer], log: Path, staff_cookie: str
) -> None:
    server = live_server_factory(
        env={"STREAMBOARD_LOGS": f"test={log}", "STREAMBOARD_HEARTBEAT_SECONDS": "0.2"}
    )
    with RawEventStream(server, "/streams/logs/test/?backfill=0", staff_cookie) as client:
        client.events_until(lambda e: e.event == "lines")
        wait_until(pushed(server, staff_cookie, 1), what="the client in push mode")
        start = len(client.body)
        wait_until(
            lambda: client.read() is not None and client.body.count(b": heartbeat", start) >= 3,
            what="three heartbeats",
        )
        # Still in push mode: the heartbeats did not come from its own task.
        assert clients(server, staff_cookie)["pushed"] == 1
        append(log, ["INFO after the heartbeats"])
        read_until(client, "INFO after the heartbeats")
