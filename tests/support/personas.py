"""Personas: staff (with or without unredacted logs), a superuser, a plain user, anonymous.

Loaded for every test by ``tests/conftest.py`` (``pytest_plugins``). The
clients are Django test clients for in-process requests; the cookies are
``Cookie`` header values for requests to a live server over a socket, which
share the test database and so need ``transactional_db``.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import Client


@pytest.fixture
def staff_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(
        "staff", "staff@example.com", "staff-password", is_staff=True
    )


@pytest.fixture
def superuser(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser("root", "root@example.com", "root-password")


@pytest.fixture
def unredacted_user(django_user_model: type[User]) -> User:
    """A staff user granted ``streams.view_unredacted_logs`` (log lines as written)."""
    user = django_user_model.objects.create_user(
        "reader", "reader@example.com", "reader-password", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_unredacted_logs"))
    return user


@pytest.fixture
def unredacted_client(unredacted_user: User) -> Client:
    client = Client()
    client.force_login(unredacted_user)
    return client


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
    if threading.current_thread() is not threading.main_thread():
        # Called from a helper thread (a sync fixture of an async test): its
        # connection would otherwise be dropped unclosed when the thread ends.
        connections.close_all()
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def staff_cookie(transactional_db: None, staff_user: User) -> str:
    return session_cookie(staff_user)


@pytest.fixture
def superuser_cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


@pytest.fixture
def unredacted_cookie(transactional_db: None, unredacted_user: User) -> str:
    return session_cookie(unredacted_user)
