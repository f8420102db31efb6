"""``manage.py ship_log`` as a real process against a real Redis it does not know is a test.

Every test reads back what reached Redis and checks each line arrived
exactly once, in order: across rotation, truncation, late creation, a
SIGKILL at an arbitrary point of a run, a shipper stopped while its file was
rotated, and Redis itself stopped and restarted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.logs.redis.support import (
    RedisProcess,
    entries,
    redis_process,
    shipped_lines,
    shipping,
    write_lines,
)
from tests.support.wait import wait_until

pytestmark = pytest.mark.live


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "app.log"


def texts(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix} {i:06d}" for i in range(start, start + count)]


def wait_for_lines(server: RedisProcess, expected: list[str], timeout: float = 30.0) -> None:
    with server.client() as client:

        def complete() -> bool:
            return len(shipped_lines(client, "web")) >= len(expected)

        wait_until(complete, timeout, f"{len(expected)} lines in Redis")
        assert shipped_lines(client, "web") == expected


def test_it_ships_the_file_then_what_is_appended_with_host_and_position(
    redis_server: RedisProcess, log: Path
):
    write_lines(log, texts("old", 3))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(redis_server, texts("old", 3))
        write_lines(log, ["INFO appended"])
        wait_for_lines(redis_server, [*texts("old", 3), "INFO appended"])
    with redis_server.client() as client:
        last = entries(client, "web")[-1][1]
        shipped = client.hget("streamboard:log:web:shipped", "web-1")
    inode = log.stat().st_ino
    assert last == {
        "host": "web-1",
        "line": "INFO appended",
        "pos": f"{inode}:{log.stat().st_size}",
    }
    assert shipped.startswith(f"2 {inode}:{log.stat().st_size} ")  # and the fingerprint


def test_rotation_truncation_and_late_creation_lose_and_repeat_nothing(
    redis_server: RedisProcess, log: Path
):
    with shipping(redis_server.url, "web", log, "web-1"):
        write_lines(log, texts("created late", 2))  # the file did not exist at start
        expected = texts("created late", 2)
        wait_for_lines(redis_server, expected)
        # Rotation: the old file gets more lines after its rename, then a new file appears.
        os.rename(log, log.with_name("app.log.1"))
        write_lines(log.with_name("app.log.1"), ["last of the old file"])
        write_lines(log, texts("new file", 3))
        expected += ["last of the old file", *texts("new file", 3)]
        wait_for_lines(redis_server, expected)
        # Truncation: the file starts again from nothing.
        log.write_text("after truncation\n")
        expected.append("after truncation")
        wait_for_lines(redis_server, expected)
    with redis_server.client() as client:
        notices = [f["notice"] for _, f in entries(client, "web") if "notice" in f]
    assert any("rotated" in notice for notice in notices)
    assert any("truncated" in notice for notice in notices)


def test_sigkill_at_any_point_then_restarts_ship_every_line_exactly_once(
    redis_server: RedisProcess, log: Path
):
    total = 60_000
    write_lines(log, texts("line", total))
    with redis_server.client() as client:
        reached = 0
        for _ in range(3):
            with shipping(redis_server.url, "web", log, "web-1", "--batch", "100") as shipper:
                floor = reached + 5_000

                def past_floor(floor: int = floor) -> bool:
                    return int(client.xlen("streamboard:log:web")) >= floor

                wait_until(past_floor, 60.0, f"{floor} entries", step=0.005)
                shipper.kill()  # wherever it was: reading, between XADDs, awaiting a reply
            reached = int(client.xlen("streamboard:log:web"))
        assert reached < total, "the kills came too late to interrupt anything"
        with shipping(redis_server.url, "web", log, "web-1"):
            wait_for_lines(redis_server, texts("line", total), timeout=60.0)


def test_a_restarted_shipper_finishes_a_file_rotated_while_it_was_stopped(
    redis_server: RedisProcess, log: Path
):
    write_lines(log, texts("before", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(redis_server, texts("before", 2))
    write_lines(log, texts("while stopped", 2))
    os.rename(log, log.with_name("app.log.1"))
    write_lines(log, texts("new file", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(
            redis_server, [*texts("before", 2), *texts("while stopped", 2), *texts("new file", 2)]
        )


def test_a_restarted_shipper_overtaken_by_two_rotations_ships_every_generation_once(
    redis_server: RedisProcess, log: Path
):
    one, two = log.with_name("app.log.1"), log.with_name("app.log.2")
    write_lines(log, texts("first", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(redis_server, texts("first", 2))
    write_lines(log, texts("first after stop", 2))
    os.rename(log, one)
    write_lines(log, texts("second", 2))
    os.rename(one, two)  # logrotate's order: the oldest moves first
    os.rename(log, one)
    write_lines(log, texts("third", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(
            redis_server,
            [
                *texts("first", 2),
                *texts("first after stop", 2),
                *texts("second", 2),
                *texts("third", 2),
            ],
        )


def test_a_file_rotated_away_and_deleted_while_stopped_leaves_a_gap_marker(
    redis_server: RedisProcess, log: Path
):
    write_lines(log, texts("before", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(redis_server, texts("before", 2))
    write_lines(log, ["never shipped"])
    os.rename(log, log.with_name("app.log.1"))
    os.unlink(log.with_name("app.log.1"))
    write_lines(log, texts("new file", 2))
    with shipping(redis_server.url, "web", log, "web-1"):
        wait_for_lines(redis_server, [*texts("before", 2), *texts("new file", 2)])
    with redis_server.client() as client:
        gaps = [f["gap"] for _, f in entries(client, "web") if "gap" in f]
    assert len(gaps) == 1
    assert "is gone" in gaps[0]


def test_redis_stopped_and_restarted_loses_nothing_written_meanwhile(
    redis_server: RedisProcess, log: Path
):
    write_lines(log, texts("before", 3))
    with shipping(redis_server.url, "web", log, "web-1") as shipper:
        wait_for_lines(redis_server, texts("before", 3))
        redis_server.stop()
        write_lines(log, texts("during", 3))
        wait_until(lambda: shipper.logged("Redis is unreachable"), 30.0, "the shipper retries")
        # Rotated while Redis is away: the old inode is finished from its descriptor.
        os.rename(log, log.with_name("app.log.1"))
        write_lines(log, texts("rotated during", 3))
        redis_server.start()
        wait_for_lines(
            redis_server, [*texts("before", 3), *texts("during", 3), *texts("rotated during", 3)]
        )
        assert shipper.logged("Redis answers again")


def test_each_batch_trims_the_stream_by_length_and_by_age(redis_server: RedisProcess, log: Path):
    with redis_server.client() as client:
        for i in range(1, 251):  # entries from 1970: older than any age bound
            client.xadd("streamboard:log:web", {"host": "old", "line": f"old {i}"}, id=f"1-{i}")
        write_lines(log, texts("recent", 10))
        age = {"STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS": "3600", "STREAMBOARD_REDIS_LOG_MAXLEN": "0"}
        with shipping(redis_server.url, "web", log, "web-1", env=age):
            wait_until(lambda: len(shipped_lines(client, "web", "web-1")) == 10, 30.0, "shipped")
        # ``MINID ~`` drops whole nodes (100 entries each): what is left of 1970 is a partial node.
        assert len(shipped_lines(client, "web", "old")) < 100
        client.delete("streamboard:log:web", "streamboard:log:web:shipped")
        log.unlink()
        write_lines(log, texts("line", 1000))
        maxlen = {"STREAMBOARD_REDIS_LOG_MAXLEN": "100"}
        with shipping(redis_server.url, "web", log, "web-1", env=maxlen):

            def all_added() -> bool:
                if not client.exists("streamboard:log:web"):
                    return False
                info = client.xinfo_stream("streamboard:log:web")
                return int(info["entries-added"]) >= 1000

            wait_until(all_added, 30.0, "1000 entries added")
        kept = shipped_lines(client, "web")
    assert 100 <= len(kept) <= 200  # ``MAXLEN ~``: at least the bound, within a node of it
    assert kept == texts("line", 1000)[-len(kept) :]
