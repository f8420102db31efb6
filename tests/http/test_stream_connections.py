"""An open stream holds no database connection (the real server, its real descriptors).

Django would keep a request's connection until its response ends, for a
stream its whole life. ``stream_staff_required`` reads the session in one of
its lookup threads instead, which on SQLite keep one connection each,
however many streams are open, and on PostgreSQL keep none.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connection

from streams.http.access import LOOKUP_THREADS
from tests.support.live import LiveServer
from tests.support.sse import open_sse

pytestmark = [pytest.mark.live, pytest.mark.services]

STREAMS = 20


def sqlite_connections(pid: int, database: str) -> int:
    """How many SQLite connections the server has open: one WAL descriptor each.

    (Not the database file's descriptors: SQLite defers closing one of those
    while another connection of the process holds a lock on the file.)
    """
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        if target == f"{database}-wal":
            count += 1
    return count


def postgres_connections(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            [database],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def test_open_log_streams_hold_no_database_connection(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path, staff_cookie: str
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO hello\n")
    server = live_server_factory(env={"STREAMBOARD_LOGS": f"test={log}"})
    database = str(connection.settings_dict["NAME"])

    def held() -> int:
        if connection.vendor == "sqlite":
            return sqlite_connections(server.pid, database)
        return postgres_connections(database)

    path = "/streams/logs/test/?backfill=1"
    kept = LOOKUP_THREADS if connection.vendor == "sqlite" else 0
    with ExitStack() as stack:
        # The server's own start-up connection (system checks), before any stream.
        baseline = held()
        for _ in range(STREAMS):
            events = stack.enter_context(open_sse(server, path, staff_cookie))
            next(events)  # the backfill: the view has returned, the stream is under way
        after_some = held()
        for _ in range(STREAMS):
            events = stack.enter_context(open_sse(server, path, staff_cookie))
            next(events)
        # Every one of the 40 requests read the session from the database;
        # none of them keeps a connection while it streams.
        assert baseline <= after_some <= baseline + kept
        assert held() == after_some
