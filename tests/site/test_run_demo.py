"""``make run`` (``scripts/run_demo.py``) end to end: served at once, seeded by a tracked job.

The script runs for real in a private ``STREAMBOARD_VAR_DIR`` (its own SQLite
file, demo log and exports) on a free port, twice: the first run serves
pages while its worker seeds the orders as a ``demo.seed`` job; the second,
with the orders there, starts no job. Both stop cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.live import ROOT, free_port, stop
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

ROWS = 3_000


def served(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(database, timeout=20)) as db:
        return db.execute(sql).fetchall()


@contextmanager
def run_demo(var_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(STREAMBOARD_VAR_DIR=str(var_dir), PORT=str(port), SEED_ROWS=str(ROWS))
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "scripts/run_demo.py"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            stop(process, grace=30)
    assert process.returncode == 0, log.read_text()


def test_make_run_serves_while_a_tracked_job_seeds_and_a_restart_starts_none(
    tmp_path: Path,
) -> None:
    database = tmp_path / "streamboard.sqlite3"
    port = free_port()
    login = f"http://127.0.0.1:{port}/admin/login/"
    first = tmp_path / "first.log"
    with run_demo(tmp_path, port, first):
        wait_until(lambda: served(login), timeout=90, what="the first page")
        wait_until(
            lambda: query(database, "SELECT status FROM streams_job") == [("succeeded",)],
            timeout=90,
            what="the seed job's success",
        )
    [(kind, done, total, unit, username)] = query(
        database,
        "SELECT kind, done, total, unit, username FROM streams_job"
        " JOIN auth_user ON auth_user.id = streams_job.user_id",
    )
    assert (kind, done, total, unit, username) == ("demo.seed", ROWS, ROWS, "orders", "admin")
    assert query(database, "SELECT COUNT(*) FROM dashboard_order") == [(ROWS,)]
    assert "start_demo_seed: job #1 seeds the demo orders" in first.read_text()

    second = tmp_path / "second.log"
    with run_demo(tmp_path, port, second):
        wait_until(lambda: "start_demo_seed:" in second.read_text(), timeout=90)
        wait_until(lambda: served(login), timeout=90, what="the first page, again")
    assert f"{ROWS:,} orders or more already, nothing to do." in second.read_text()
    assert query(database, "SELECT COUNT(*) FROM streams_job") == [(1,)]
