"""Settings come from the environment, and a bad value stops start-up naming the variable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.environment import env_bool, env_float, env_int, parse_log_sources
from streams import conf

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "not-a-url://"),
        ("STREAMBOARD_LOGS", "demo=relative/path.log"),
        ("STREAMBOARD_LOGS", "../etc=/etc/passwd"),
        ("STREAMBOARD_QUEUE_SIZE", "lots"),
        ("STREAMBOARD_QUEUE_BYTES", "100"),
        ("STREAMBOARD_HEARTBEAT_SECONDS", "0"),
        ("STREAMBOARD_LOG_ROTATION", "nope=*.gz"),
        ("STREAMBOARD_LOG_ROTATION", "demo=../other/*.gz"),
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


#: Every scalar setting's reader in ``streams.conf`` (documented in the README's table).
SCALAR_READERS: dict[str, Callable[[], object]] = {
    "STREAMBOARD_HEARTBEAT_SECONDS": conf.heartbeat_seconds,
    "STREAMBOARD_QUEUE_SIZE": conf.queue_size,
    "STREAMBOARD_QUEUE_BYTES": conf.queue_bytes,
    "STREAMBOARD_PUSH": conf.push_delivery,
    "STREAMBOARD_EXPORT_CHUNK_SIZE": conf.export_chunk_size,
    "STREAMBOARD_EXPORT_CHUNK_DELAY": conf.export_chunk_delay,
    "STREAMBOARD_EXPORT_PROGRESS_SECONDS": conf.export_progress_seconds,
    "STREAMBOARD_EXPORT_POLL_SECONDS": conf.export_poll_seconds,
    "STREAMBOARD_EXPORT_STALE_SECONDS": conf.export_stale_seconds,
    "STREAMBOARD_JOB_REAP_SECONDS": conf.job_reap_seconds,
    "STREAMBOARD_JOB_RETENTION_DAYS": conf.job_retention_days,
    "STREAMBOARD_JOB_PRUNE_SECONDS": conf.job_prune_seconds,
    "STREAMBOARD_JOB_CHUNK_DELAY": conf.job_chunk_delay,
    "STREAMBOARD_REDIS_LOG_MAXLEN": conf.redis_log_maxlen,
    "STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS": conf.redis_log_max_age,
}


def readme_defaults() -> dict[str, str]:
    """The README's settings table: variable -> its documented default."""
    rows = re.findall(r"^\| `(STREAMBOARD_\w+)` \| `([^`]*)` \|", README.read_text(), re.MULTILINE)
    return dict(rows)


def test_the_readme_defaults_are_what_the_app_sees_with_an_empty_environment(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMBOARD_")}
    env["STREAMBOARD_VAR_DIR"] = str(tmp_path)
    readers = {name: reader.__name__ for name, reader in SCALAR_READERS.items()}
    script = (
        "import json; from streams import conf\n"
        f"readers = {readers!r}\n"
        "def shown(value):\n"
        "    if isinstance(value, bool): return str(value).lower()\n"
        "    return f'{value:g}' if isinstance(value, float) else str(value)\n"
        "seen = {name: shown(getattr(conf, reader)()) for name, reader in readers.items()}\n"
        "seen['STREAMBOARD_LOGS'] = ','.join(f'{k}={v}' for k, v in conf.log_sources().items())\n"
        "seen['STREAMBOARD_EXPORT_DIR'] = str(conf.export_dir())\n"
        "seen['STREAMBOARD_REDACT'] = ','.join(str(rule) for rule in conf.redact_rules())\n"
        "print(json.dumps(seen))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    documented = readme_defaults()
    # A derived default is written out in words in the README, not as a value.
    derived = {name for name, default in conf.DEFAULTS.items() if default is None}
    assert set(seen) - derived == set(documented) - {"STREAMBOARD_VAR_DIR"}
    for name, value in seen.items():
        if name in derived:
            continue
        assert value == documented[name].replace("var/", f"{tmp_path}/"), name


@pytest.mark.parametrize("name", sorted(conf.DEFAULTS))
def test_an_unset_setting_takes_the_default_from_conf(name: str, settings: Any) -> None:
    readers: dict[str, Callable[[], object]] = {
        **SCALAR_READERS,
        "STREAMBOARD_EXPORTS": conf.export_allow_list,
        "STREAMBOARD_REDACT": conf.redact_rules,
        "STREAMBOARD_LOG_ROTATION": conf.log_rotation,
    }
    if hasattr(settings, name):
        delattr(settings, name)
    default = conf.DEFAULTS[name]
    if default is None:  # derived from another setting (documented beside it)
        assert readers[name]() is not None
    else:
        assert readers[name]() == default


def test_path_defaults_follow_the_site(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STREAMBOARD_DEMO_LOG = tmp_path / "demo.log"
    for name in ("STREAMBOARD_EXPORT_DIR", "STREAMBOARD_LOGS"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert conf.export_dir() == tmp_path / "media" / "exports"
    assert conf.log_sources() == {"demo": tmp_path / "demo.log"}
    del settings.STREAMBOARD_DEMO_LOG
    assert conf.log_sources() == {}


def test_nothing_but_conf_reads_streamboard_settings() -> None:
    reads = re.compile(r"settings\.STREAMBOARD_|getattr\(\s*settings,\s*[\"']STREAMBOARD_")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("streams", "dashboard", "bench", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "streams" / "conf.py" and reads.search(path.read_text())
    ]
    assert offenders == []
