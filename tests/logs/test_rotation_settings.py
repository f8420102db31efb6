"""A source's rotated files as configured (``STREAMBOARD_LOG_ROTATION``): found, searched, checked.

The names used here (``app-20261201.log.gz``: logrotate's ``dateext`` with
``extension .log``) are ones the built-in patterns do not find, so each test
shows the setting at work, not the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from dashboard.environment import parse_log_rotation
from streams import conf
from streams.logs.history import DEFAULT_ROTATED, rotated_siblings, rotation_patterns
from tests.logs.test_history import log_lines, write
from tests.logs.test_log_download import body
from tests.support.asgi import StreamCall
from tests.support.sse import events_in

NEEDLE = "2026-12-01 09:00:00,000 ERROR needle in the dated rotation"


@pytest.fixture
def source(tmp_path: Path, settings: Any) -> Path:
    """app.log, app.log.1 (a default name), and two dated rotations the defaults miss."""
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"app": path, "web": Path("redis:web")}
    write(tmp_path / "app-20261130.log.gz", ["2026-11-30 09:00:00,000 INFO older"])
    write(tmp_path / "app-20261201.log.gz", [NEEDLE])
    write(tmp_path / "app.log.1", ["2026-12-01 10:00:00,000 INFO numbered"])
    write(path, log_lines(0, 20))
    # Newest first by modification time: make the 1 December rotation the newer one.
    os.utime(tmp_path / "app-20261130.log.gz", (1_700_000_000, 1_700_000_000))
    os.utime(tmp_path / "app-20261201.log.gz", (1_700_086_400, 1_700_086_400))
    return path


def test_without_the_setting_a_source_has_the_built_in_patterns(source: Path):
    assert rotation_patterns("app") == DEFAULT_ROTATED
    assert rotated_siblings(source, rotation_patterns("app")) == [source.parent / "app.log.1"]


def test_a_configured_source_has_exactly_its_globs_newest_first(source: Path, settings: Any):
    settings.STREAMBOARD_LOG_ROTATION = {"app": ["app-*.log.gz"]}
    assert rotated_siblings(source, rotation_patterns("app")) == [
        source.parent / "app-20261201.log.gz",
        source.parent / "app-20261130.log.gz",
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_search_finds_a_line_in_a_configured_dated_rotation(
    source: Path, settings: Any, staff_cookie: str
):
    settings.STREAMBOARD_LOG_ROTATION = {"app": ["app-*.log.gz", "app.log.[0-9]"]}
    request = StreamCall("/streams/logs/app/search", staff_cookie, "q=needle")
    await request.start()
    assert request.status == 200
    body = await request.read_until(lambda b: b"event: done" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    results = [e.data for e in events_in(body) if e.event == "result"]
    assert len(results) == 1
    assert "<mark>needle</mark> in the dated rotation" in results[0]
    assert 'data-file="app-20261201.log.gz"' in results[0]


def test_a_filtered_download_reads_the_configured_rotations(
    source: Path, settings: Any, staff_client: Client
):
    settings.STREAMBOARD_LOG_ROTATION = {"app": ["app-*.log.gz"]}
    response = staff_client.get("/logs/app/download", {"q": "older"})
    assert response.status_code == 200
    assert body(response) == b"2026-11-30 09:00:00,000 INFO older\n"


def test_the_environment_names_sources_and_their_patterns():
    assert parse_log_rotation(" app=app-*.log.gz; app-*.log ,web=web.log.old*") == {
        "app": ["app-*.log.gz", "app-*.log"],
        "web": ["web.log.old*"],
    }
    for bad, message in [
        ("app", "not of the form name=glob;glob"),
        ("app=", "not of the form"),
        ("app=a*,app=b*", "named twice"),
    ]:
        with pytest.raises(ImproperlyConfigured, match=message):
            parse_log_rotation(bad)


@pytest.mark.parametrize(
    ("rotation", "message"),
    [
        ({"nope": ["*.gz"]}, r"'nope' is not a log source \(STREAMBOARD_LOGS names: app, web\)"),
        ({"web": ["web.*"]}, "'web' is a redis: source, not a file"),
        ({"app": ["../other/*.gz"]}, r"\['app'\]: a non-empty list of glob patterns"),
        ({"app": []}, r"\['app'\]: a non-empty list"),
        ({"app": "app-*.log.gz"}, r"\['app'\]: a non-empty list"),
        (["app-*.log.gz"], "must map source names to glob patterns"),
    ],
)
def test_a_bad_rotation_setting_is_refused_naming_the_variable(
    source: Path, settings: Any, rotation: object, message: str
):
    settings.STREAMBOARD_LOG_ROTATION = rotation
    with pytest.raises(ImproperlyConfigured, match=f"^STREAMBOARD_LOG_ROTATION.*{message}"):
        conf.log_rotation()
