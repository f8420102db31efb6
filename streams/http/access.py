"""Who may open a stream: signed-in, active staff.

Pages redirect anonymous users to the admin login (``staff_member_required``);
a stream URL answers 403 instead, because an EventSource or ``curl`` that
follows a redirect to a login page with status 200 would mistake the page for
the stream.

Checking the session opens a database connection in the request's thread,
and Django keeps it until ``request_finished``, i.e. until the stream ends:
one idle connection (and, on SQLite, two file descriptors and about 120 KiB)
per open stream. Once the view has returned a streaming response its own
database work is done (producers make their own short hops), so the
connection is closed there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user
from django.db import connections
from django.http import HttpRequest, HttpResponseForbidden
from django.http.response import HttpResponseBase

AsyncView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def is_staff(user: object) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def stream_staff_required(view: AsyncView) -> AsyncView:
    """Answer 403 (never a redirect) unless the request's user is active staff."""

    @wraps(view)
    async def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        user = await sync_to_async(_user_of, thread_sensitive=False)(request)
        if not is_staff(user):
            return HttpResponseForbidden(
                "Streams need a signed-in staff user.\n", content_type="text/plain"
            )
        response = await view(request, *args, **kwargs)
        if response.streaming:
            # Same thread as the session lookup (thread-sensitive), so this
            # closes the connection that lookup opened.
            await sync_to_async(_close_connections)()
        return response

    return wrapper


def _user_of(request: HttpRequest) -> object:
    """The request's user, read in a shared executor thread whose connection is then closed.

    Not in the request's own thread (where ``request.auser()`` would read it):
    that thread lives as long as the stream, and the stack pages the session
    query touched there (the ORM, SQLite's C code) stay resident with it.
    Measured at 1,000 open streams: 75 KiB per connection instead of 135.
    The result is cached where ``request.user`` and ``request.auser()`` look.
    """
    user = get_user(request)
    _close_connections()
    request._cached_user = user  # type: ignore[attr-defined]
    request._acached_user = user  # type: ignore[attr-defined]
    return user


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        # Inside an atomic block (a test's transaction) closing would break it.
        if not connection.in_atomic_block:
            connection.close()
