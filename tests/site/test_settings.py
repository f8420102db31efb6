"""Settings come from the environment, and a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.environment import env_bool, env_float, env_int, parse_log_sources

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "not-a-url://"),
        ("STREAMBOARD_LOGS", "demo=relative/path.log"),
        ("STREAMBOARD_LOGS", "../etc=/etc/passwd"),
        ("STREAMBOARD_QUEUE_SIZE", "lots"),
        ("STREAMBOARD_HEARTBEAT_SECONDS", "0"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable(
    variable: str, value: str, tmp_path: Path
) -> None:
    env = dict(os.environ, STREAMBOARD_VAR_DIR=str(tmp_path), **{variable: value})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1]


def test_unset_variables_give_the_embedded_defaults() -> None:
    assert env_bool("X", False, environ={}) is False
    assert env_int("X", 1000, environ={}) == 1000
    assert env_float("X", 15.0, environ={}) == 15.0


def test_log_sources_are_named_absolute_paths() -> None:
    assert parse_log_sources("app=/var/log/app.log, web-1=/srv/web.log") == {
        "app": Path("/var/log/app.log"),
        "web-1": Path("/srv/web.log"),
    }
    with pytest.raises(ImproperlyConfigured, match="named twice"):
        parse_log_sources("a=/x.log,a=/y.log")
    with pytest.raises(ImproperlyConfigured, match="names no log source"):
        parse_log_sources(" , ")
