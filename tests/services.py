"""Real services for tests: what to do when one is missing.

Here a missing service skips; in CI (``STREAMBOARD_REQUIRE_SERVICES=1``, set
by ``.ci/run``) it fails, so a green CI run has really used every service.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("STREAMBOARD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STREAMBOARD_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
