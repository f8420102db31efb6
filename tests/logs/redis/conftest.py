"""Fixtures of the tests that ship lines to a real Redis and read them through the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.services import redis_server


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """The pass's Redis when it has one, else a private one for this test."""
    if getattr(settings, "REDIS_URL", ""):
        yield str(settings.REDIS_URL)
        return
    with redis_server() as url:
        settings.REDIS_URL = url
        yield url


@pytest.fixture
def stream(redis_url: str, settings: Any) -> str:
    """A stream of this test's own (the pass's Redis is shared), as the source ``web``."""
    name = f"download-{uuid.uuid4().hex[:12]}"
    settings.STREAMBOARD_LOGS = {"web": f"redis:{name}"}
    return name
