"""Open streams hold no thread each, on a real server (threads counted in /proc).

asgiref gives every request of Django's ASGI handler its own executor thread
for thread-sensitive calls (the middleware's), and keeps it until the
response ends: for a stream, its whole life. ``StreamReleaseMiddleware``
shuts it down once the streaming response has left the middleware.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.live import LiveServer
from tests.support.sse import RawEventStream
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

STREAMS = 40


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_open_log_streams_do_not_keep_a_thread_each(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path, staff_cookie: str
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO hello\n")
    server = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log}"})
    path = "/streams/logs/test/?backfill=1&format=json"
    with RawEventStream(server, path, staff_cookie) as first:
        first.events_until(lambda e: e.event == "lines")
        before = threads_of(server.pid)
        streams = [RawEventStream(server, path, staff_cookie) for _ in range(STREAMS)]
        try:
            for stream in streams:
                stream.events_until(lambda e: e.event == "lines")
            # A released thread exits shortly after its executor is shut down.
            wait_until(
                lambda: threads_of(server.pid) - before < STREAMS // 4,
                20,
                f"{STREAMS} open streams hold at most a few threads",
            )
        finally:
            for stream in streams:
                stream.close()
