"""The log stream views in-process: the ASGI application called directly, then a disconnect.

These prove the lifecycle the real server cannot show from outside: when the
client goes away, the producer's ``finally:`` ran, the subscription is gone
and the shared tailer stopped.
"""

# The tests write the followed file from the event loop on purpose.
# ruff: noqa: ASYNC240

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.logs.files.tailer import Tailer, active_tailers
from tests.support.asgi import StreamCall
from tests.support.sse import events_in

pytestmark = pytest.mark.django_db(transaction=True)


def tailers_of(path: Path) -> list[Tailer]:
    return [t for t in active_tailers() if t.path == path]


@pytest.fixture
def log(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"test": path, "other": tmp_path / "other.log"}
    return path


async def test_disconnect_runs_cleanup_and_stops_the_tailer(log: Path, staff_cookie: str):
    log.write_text("INFO one\nERROR two\n")
    request = StreamCall("/streams/logs/test/", staff_cookie, "backfill=5&format=json")
    await request.start()
    assert request.status == 200
    assert request.headers["content-type"].startswith("text/event-stream")
    body = await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    (first,) = events_in(body)
    assert json.loads(first.data) == {
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
    a = StreamCall("/streams/logs/test/", staff_cookie)
    b = StreamCall("/streams/logs/test/", staff_cookie, "level=error")
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
    first = StreamCall("/streams/logs/test/", staff_cookie, "backfill=0")
    await first.start()
    body = await first.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    cursor = events_in(body)[0].id
    await first.hang_up()
    with log.open("a") as f:
        f.write("two\n")
    resumed = StreamCall(
        "/streams/logs/test/", staff_cookie, "format=json", headers={"Last-Event-ID": cursor}
    )
    await resumed.start()
    body = await resumed.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    await resumed.hang_up()
    assert json.loads(events_in(body)[0].data) == {"lines": [{"text": "two", "level": "info"}]}


async def test_text_stream_sends_plain_lines(log: Path, staff_cookie: str):
    log.write_text("alpha\nbeta\n")
    request = StreamCall("/streams/logs/test.txt", staff_cookie, "backfill=1")
    await request.start()
    assert request.headers["content-type"].startswith("text/plain")
    body = await request.read_until(lambda b: b"beta\n" in b)
    await request.hang_up()
    assert body == b"beta\n"
    assert tailers_of(log) == []


async def test_overview_sends_a_card_per_source_and_cleans_up(log: Path, staff_cookie: str):
    log.write_text("ERROR the latest line\n")
    request = StreamCall("/streams/overview/", staff_cookie)
    await request.start()
    body = await request.read_until(
        lambda b: b"event: source-test" in b and b"event: source-other" in b
    )
    events = {e.event: e for e in events_in(body)}
    assert "the latest line" in events["source-test"].data
    assert "/logs/test/" in events["source-test"].data
    assert "does not exist yet" in events["source-other"].data
    with log.open("a") as f:
        f.write("WARNING a newer line\n")
    await request.read_until(lambda b: b"a newer line" in b)
    await request.hang_up()
    assert tailers_of(log) == []
