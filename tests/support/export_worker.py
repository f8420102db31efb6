"""A real ``manage.py db_worker`` (django-tasks-db) in a subprocess, for export job tests.

Like the live server it reads the file-based SQLite test database (tests
need ``transactional_db``), and it is stopped by its process id. Its export
chunks are small and paced by the environment so progress is observable on
a few hundred rows.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from streams import conf
from tests.support.live import ROOT, child_env, stop

SLOW_EXPORT = {
    "STREAMBOARD_EXPORT_CHUNK_SIZE": "10",
    "STREAMBOARD_EXPORT_CHUNK_DELAY": "0.05",
    "STREAMBOARD_EXPORT_PROGRESS_SECONDS": "0.05",
}


def export_env() -> dict[str, str]:
    """The test's export directory, for a worker or server subprocess."""
    return {"STREAMBOARD_EXPORT_DIR": str(conf.export_dir())}


def redis_source_env(redis_url: str) -> dict[str, str]:
    """``export_env`` plus a Redis log source ``web`` and a 1 s heartbeat, on ``redis_url``."""
    return {
        **export_env(),
        "REDIS_URL": redis_url,
        "STREAMBOARD_LOGS": "web=redis:web",
        "STREAMBOARD_HEARTBEAT_SECONDS": "1",
    }


@contextmanager
def run_worker(
    env: Mapping[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a worker; its log (stderr) goes to ``log`` when given, else to the test's stderr."""
    with ExitStack() as files:
        stderr = files.enter_context(log.open("ab")) if log is not None else None
        process = _start(env, stderr)
    try:
        yield process
    finally:
        stop(process)


def _start(env: Mapping[str, str] | None, stderr: IO[bytes] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--interval",
            "0.05",
            "--no-startup-delay",
            "--no-reload",
        ],
        cwd=ROOT,
        env=child_env({**export_env(), **(env or {})}),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
