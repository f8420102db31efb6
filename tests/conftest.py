"""Personas and live-server fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.live import LiveServer, run_server

pytest_plugins = ["tests.browser"]

# Run a second time by ``make test`` against a private PostgreSQL and Redis
# (``scripts/with_services.py``): everything that touches the database across
# processes or the channel layer. Marked here, in one place, by module.
SCALE_OUT_MODULES = {
    "test_export_fast_path",
    "test_exports_view",
    "test_exports_live",
    "test_jobs",
    "test_jobs_live",
    "test_stream_connections",
    "test_scale_out",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SCALE_OUT_MODULES:
            item.add_marker(pytest.mark.services)


@pytest.fixture
def staff_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(
        "staff", "staff@example.com", "staff-password", is_staff=True
    )


@pytest.fixture
def superuser(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser("root", "root@example.com", "root-password")


@pytest.fixture
def plain_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("plain", "plain@example.com", "plain-password")


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def plain_client(plain_user: User) -> Client:
    client = Client()
    client.force_login(plain_user)
    return client


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


def session_cookie(user: User) -> str:
    """A ``Cookie`` header value for ``user``, usable against a live server."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def staff_cookie(transactional_db: None, staff_user: User) -> str:
    return session_cookie(staff_user)


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
