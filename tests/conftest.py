"""Fixtures shared by every test module: personas (``tests.support.personas``), live servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections

from tests.support.live import LiveServer, run_server

pytest_plugins = ["tests.support.personas", "tests.support.browser"]

# ``make test`` runs the modules marked ``services`` (each says so itself with
# ``pytestmark``) a second time against a private PostgreSQL and Redis
# (``scripts/with_services.py``). A rename or a lost mark must never shrink that
# pass silently: it refuses to run fewer tests than this.
SERVICES_PASS_MIN_TESTS = 216


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get("STREAMBOARD_SCALE_OUT_RUN") != "1":
        return
    if session.config.args_source == pytest.Config.ArgsSource.ARGS:
        return  # a part of the pass, named on the command line: run what was asked
    count = len(session.items)
    if count < SERVICES_PASS_MIN_TESTS:
        raise pytest.UsageError(
            f"the PostgreSQL/Redis pass selected {count} tests, fewer than its floor of "
            f"{SERVICES_PASS_MIN_TESTS}: a module lost its services mark?"
        )


@pytest.fixture(autouse=True)
def _close_asgiref_thread_connections() -> Iterator[None]:
    """Close what an async test's ``sync_to_async`` calls opened, once it ends.

    Outside a request, asgiref runs thread-sensitive calls on one thread of
    its own, whose connections pytest-django never sees: left open, the last
    one stops PostgreSQL from dropping the test database ("being accessed
    by other users").
    """
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def live_server_factory(transactional_db: None) -> Iterator[Callable[..., LiveServer]]:
    """Start real ``manage.py serve`` processes: ``live_server_factory(env={...})``."""
    with ExitStack() as stack:

        def start(env: dict[str, str] | None = None, **_: Any) -> LiveServer:
            return stack.enter_context(run_server(env))

        yield start


@pytest.fixture
def live(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """One real server with the default settings."""
    return live_server_factory()
