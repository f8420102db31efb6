"""Free what a long stream no longer needs once its response has left the middleware.

An SSE or NDJSON response lives for minutes or hours, and everything the
request touched on its way in lives with it, because Django's
``ASGIHandler.handle`` keeps the request (and, through asgiref's
``ThreadSensitiveContext``, the request's own executor thread) until the
body ends. Once the whole middleware stack has returned a *streaming*
response, nothing reads the session, the user, the messages or the URL
resolver's match again: the producers make their own short database hops,
in the shared executor or a thread of their own.

``StreamReleaseMiddleware`` (first in ``MIDDLEWARE``, so it runs after every
other middleware's response step) then drops those attributes and shuts the
request's thread-sensitive executor down. A later thread-sensitive call in
the same request (Django closes the response in one at the end) gets a new
executor from asgiref, which shuts it down when the request ends; nothing
is lost, the thread just does not idle for the length of the stream.
Measured in docs/benchmarks.md ("Per connection"), ``bench/conn_memory.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from asgiref.sync import SyncToAsync, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from streams.http.access import close_connections

#: Per-request state that middleware and views set and a running stream never reads.
RELEASED: Final = (
    "session",
    "user",
    "auser",
    "_cached_user",
    "_acached_user",
    "_messages",
    "resolver_match",
    "htmx",
)

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def release_request(request: HttpRequest) -> None:
    """Drop the request's session, user, messages and URL match (whichever are set)."""
    state = request.__dict__
    for name in RELEASED:
        state.pop(name, None)


def release_request_thread() -> None:
    """Shut down the current request's thread-sensitive executor (its idle thread exits)."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None:
        return
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is not None:
        # Queued work still runs before the thread exits: a database
        # connection opened in it is closed there, not left to the garbage
        # collector (connections are per thread).
        executor.submit(close_connections)
        executor.shutdown(wait=False)


class StreamReleaseMiddleware:
    """Release a streaming response's request state and thread (see the module docstring)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if response.streaming:
            release_request(request)
            release_request_thread()
        return response
