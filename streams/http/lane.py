"""The stream lane: stream views served without the middleware chain's thread hops.

Under ASGI every one of Django's own middleware classes (``MiddlewareMixin``)
runs its ``process_request`` and ``process_response`` through
``sync_to_async``: a hop to the request's thread and back, each. With the
site's seven classes a stream's connect made thirteen such hops, plus one for
CSRF's ``process_view``, before its first byte; under a reconnect storm those
hops were about half of the event loop's time (py-spy of 1,000 clients
connecting, docs/benchmarks.md "Connect cost").

None of those steps does any I/O for a ``GET`` of a stream: they read
cookies and headers, make lazy objects (the session, the user, the
messages) and set response headers. So for a ``GET`` or ``HEAD`` whose URL
resolves to a view marked as a stream (``mark_stream_view``, which
``stream_staff_required`` applies), ``StreamLaneMiddleware`` runs the steps
of the middleware after it itself, inline and in Django's order:
``process_request`` top-down, ``process_view``, the view (an exception
becomes Django's error response, as in the chain), ``process_response``
bottom-up. The response is the one the chain would give, headers included.

The lane only runs steps it knows to be free of I/O here (``INLINE``). The
one that may write, saving a modified session, goes through its usual hop.
The messages storage is made only if something uses it (a lazy object in
place of ``MessageMiddleware``'s request step, whose response step is then
skipped: an untouched storage's ``update`` changes nothing).
A middleware it does not know after it makes the lane step aside for every
request (a site's own middleware is never skipped), and so does any other
method or URL: those take Django's chain unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver, get_urlconf
from django.utils.functional import SimpleLazyObject, empty
from django.utils.module_loading import import_string
from django_htmx.middleware import HtmxDetails, HtmxMiddleware

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

#: The attribute that marks a view as a stream (wrapping decorators copy it outwards).
STREAM_VIEW: Final = "streamboard_stream"

#: Middleware whose steps do no I/O for a GET of a stream (the session's save aside).
INLINE: Final = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "django_htmx.middleware.HtmxMiddleware",
    }
)

SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


def mark_stream_view[V: Callable[..., Any]](view: V) -> V:
    """Mark ``view`` as a stream, for the lane."""
    setattr(view, STREAM_VIEW, True)
    return view


def _unused_get_response(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("the lane calls the middleware's steps, never its get_response")


class StreamLaneMiddleware:
    """Run the following middleware's steps inline for stream views (see the module docstring)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)
        following = _following(settings.MIDDLEWARE)
        self.active = all(path in INLINE for path in following)
        self.chain = [import_string(path)(_unused_get_response) for path in following]

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        view = self._stream_view(request) if self.active else None
        if view is None:
            return await self.get_response(request)
        # As in Django's chain: a middleware whose request step answers (or raises)
        # gets its own response step and those above it, not those below.
        # A middleware whose request step raises gets none; the view's exception
        # reaches every response step, as Django's error page would.
        reached = 0
        response: HttpResponseBase | None = None
        try:
            for middleware in self.chain:
                if isinstance(middleware, MessageMiddleware):
                    # Its whole request step, made lazy: the storage (two
                    # signers over the cookies, about 50 us) only if used.
                    request._messages = SimpleLazyObject(  # type: ignore[attr-defined]
                        partial(default_storage, request)
                    )
                elif hasattr(middleware, "process_request"):
                    response = middleware.process_request(request)
                reached += 1
                if response is not None:
                    break
                if isinstance(middleware, HtmxMiddleware):
                    request.htmx = HtmxDetails(request)  # type: ignore[attr-defined]
            if response is None:
                response = await self._view(request, *view)
        except Exception as exc:  # Django's chain turns any of them into a page too
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(
                request, exc
            )
        for middleware in reversed(self.chain[:reached]):
            if isinstance(middleware, MessageMiddleware) and not _messages_used(request):
                continue  # an untouched storage's update() leaves the response as it is
            if hasattr(middleware, "process_response"):
                if _must_save_session(middleware, request):
                    step = sync_to_async(middleware.process_response)
                    response = await step(request, response)
                else:
                    response = middleware.process_response(request, response)
        return response

    async def _view(
        self, request: HttpRequest, callback: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponseBase:
        for middleware in self.chain:
            if hasattr(middleware, "process_view"):
                response = middleware.process_view(request, callback, args, kwargs)
                if response is not None:
                    return response  # type: ignore[no-any-return]
        return await callback(request, *args, **kwargs)  # type: ignore[no-any-return]

    def _stream_view(
        self, request: HttpRequest
    ) -> tuple[Any, tuple[Any, ...], dict[str, Any]] | None:
        if request.method not in SAFE_METHODS:
            return None
        try:
            match = get_resolver(get_urlconf()).resolve(request.path_info)
        except Resolver404:
            return None
        if not getattr(match.func, STREAM_VIEW, False):
            return None
        request.resolver_match = match
        return match.func, match.args, match.kwargs


def _following(middleware: list[str]) -> list[str]:
    """The middleware after the lane in ``MIDDLEWARE``."""
    own = f"{__name__}.{StreamLaneMiddleware.__name__}"
    return list(middleware[middleware.index(own) + 1 :]) if own in middleware else []


def _messages_used(request: HttpRequest) -> bool:
    messages = getattr(request, "_messages", None)
    return not isinstance(messages, SimpleLazyObject) or messages._wrapped is not empty


def _must_save_session(middleware: object, request: HttpRequest) -> bool:
    if not isinstance(middleware, SessionMiddleware):
        return False
    session = getattr(request, "session", None)
    return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)
