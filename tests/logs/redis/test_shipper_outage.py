"""The shipper in-process: a truncation that overtakes an outage, and a batch sent twice.

In-process (a ``Shipper`` on this loop), because the case needs to know that
the shipper has looked at the file after the lines that will be lost were
written: ``failures`` counts its attempts, and each attempt first notes the
file's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.logs.redis.shipper import SHIP_SCRIPT, Shipper
from streams.logs.redis.stream import connect
from tests.logs.redis.support import RedisProcess, entries, redis_process, write_lines
from tests.support.wait import async_wait_until

WAIT = 30.0


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait on real state from the loop (the shipper runs on it), bounded."""
    await async_wait_until(condition, WAIT, what)


async def test_a_truncation_during_an_outage_becomes_a_gap_saying_how_many_bytes(
    redis_server: RedisProcess, tmp_path: Path
):
    log = tmp_path / "app.log"
    await asyncio.to_thread(write_lines, log, ["INFO shipped"])
    client = connect(redis_server.url)
    shipper = Shipper(client, "web", log, "web-1", watcher="poll")
    task = asyncio.create_task(shipper.run())
    try:
        await until(lambda: shipper.shipped_lines == 1, "the first line shipped")
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(write_lines, log, ["INFO read, then held"])
        await until(lambda: shipper.failures >= 1, "Redis refused")
        lost = "INFO never read: the file is truncated first"
        await asyncio.to_thread(write_lines, log, [lost])
        seen = shipper.failures
        await until(lambda: shipper.failures >= seen + 2, "the shipper looked again")
        await asyncio.to_thread(log.write_text, "INFO after the truncation\n")
        await asyncio.to_thread(redis_server.start)
        await until(lambda: shipper.shipped_lines == 3, "everything left shipped")
    finally:
        shipper.stop()
        await task
        await client.aclose()
    with redis_server.client() as sync:
        shipped = [(k, v) for _, f in entries(sync, "web") for k, v in f.items() if k != "pos"]
    assert [value for key, value in shipped if key == "line"] == [
        "INFO shipped",
        "INFO read, then held",
        "INFO after the truncation",
    ]
    gaps = [value for key, value in shipped if key == "gap"]
    assert gaps == [
        f"The file was truncated before at least {len(lost) + 1} bytes of it were read: "
        "they were lost."
    ]


def test_a_batch_sent_again_after_a_lost_reply_is_not_added_twice(redis_server: RedisProcess):
    """What the shipper does when the connection breaks after the script ran: send it again."""
    with redis_server.client() as client:
        ship = client.register_script(SHIP_SCRIPT)
        keys = ["streamboard:log:web", "streamboard:log:web:shipped"]
        batch = ["web-1", 7, 0, 0, "5:20"]
        batch += ["line", "INFO one", "5:10", "line", "INFO two", "5:20"]
        assert ship(keys=keys, args=batch) == 2
        assert ship(keys=keys, args=batch) == -1  # batch 7 is recorded: nothing added
        assert [f["line"] for _, f in entries(client, "web")] == ["INFO one", "INFO two"]
        assert client.hget(keys[1], "web-1") == "7 5:20"
        following = ["web-1", 8, 0, 0, "5:30", "line", "INFO three", "5:30"]
        assert ship(keys=keys, args=following) == 1
