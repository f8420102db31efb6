"""Settings that cannot work stop ``serve`` and ``cluster`` at start-up, naming what is wrong.

Started for real, as an operator would: the process must exit non-zero
before it listens (no ``serving on`` line), with the variable or the system
check's id on stderr, instead of starting and losing events later.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import ROOT, free_port


def start(command: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "STREAMBOARD_VAR_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", command, "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["serve", "cluster"])
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "not-a-url://"}, "DATABASE_URL is not a database URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379/0"}, "streams.E021"),
        ({"REDIS_URL": "redis://127.0.0.1:port/0"}, "streams.E021"),
        ({"STREAMBOARD_LOGS": "web=redis:web"}, "streams.E020"),
    ],
    ids=["database-url", "redis-url-scheme", "redis-url-port", "redis-source-without-redis"],
)
def test_a_setting_that_cannot_work_stops_start_up(
    command: str, env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    result = start(command, env, tmp_path)
    assert result.returncode != 0
    assert "serving on" not in result.stdout
    assert expected in result.stderr, result.stderr[-2000:]
