"""Start-up refuses a ``redis:`` source that cannot work (system checks, settings parsing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dashboard.environment import parse_log_sources
from streams.logs.redis.checks import check_log_source_kinds
from streams.logs.redis.source import RedisSource
from streams.logs.sources import make_source


def ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [error.id or "" for error in check_log_source_kinds()]


def test_a_redis_source_is_configured_beside_files() -> None:
    assert parse_log_sources("app=/var/log/app.log,web=redis:web") == {
        "app": Path("/var/log/app.log"),
        "web": Path("redis:web"),
    }
    with pytest.raises(ImproperlyConfigured, match="must be absolute"):
        parse_log_sources("web=relative/web.log")


def test_a_redis_source_without_redis_url_fails_the_checks() -> None:
    assert ids(STREAMBOARD_LOGS={"web": Path("redis:web")}, REDIS_URL="") == ["streams.E020"]


def test_an_unparseable_redis_url_fails_the_checks() -> None:
    for url in ("http://127.0.0.1:6379", "redis://127.0.0.1:port/0", "127.0.0.1:6379"):
        assert ids(REDIS_URL=url) == ["streams.E021"], url


def test_a_bad_stream_name_or_an_unknown_scheme_fails_the_checks() -> None:
    url = "redis://127.0.0.1:6379/0"
    assert ids(STREAMBOARD_LOGS={"web": Path("redis:a.b")}, REDIS_URL=url) == ["streams.E022"]
    assert ids(STREAMBOARD_LOGS={"web": Path("kafka:web")}, REDIS_URL=url) == ["streams.E023"]


def test_a_good_configuration_passes_and_names_its_stream() -> None:
    url = "rediss://:secret@redis.internal:6380/0"
    assert ids(STREAMBOARD_LOGS={"web": Path("redis:web-logs")}, REDIS_URL=url) == []
    with override_settings(REDIS_URL=url):
        source = make_source("web", "redis:web-logs")
    assert source == RedisSource("web", "web-logs", url)
    with override_settings(REDIS_URL=""), pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        make_source("web", "redis:web")
