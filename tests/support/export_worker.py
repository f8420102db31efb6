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
from contextlib import contextmanager

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


@contextmanager
def run_worker(env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
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
        stderr=None,
    )
    try:
        yield process
    finally:
        stop(process)
