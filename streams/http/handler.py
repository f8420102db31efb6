"""Django's ASGI handler, sending whole body parts where the server applies flow control.

Django's ``ASGIHandler`` slices every body part into 64 KiB messages
(``chunk_size``), so that a server without backpressure never holds much
more than that per ``send``. Under ``StreamboardServer`` each ``send`` of
``http.response.body`` already waits while the transport's buffer is full
(``streams.http.server.SendGate``), so slicing only multiplies the
per-message work: a 2000-row NDJSON chunk (about 800 KiB) made 13 messages,
13 trips through Django's send loop, daphne's ``handle_reply``, the gate and
Twisted's chunked ``write``, and 13 HTTP chunk headers.

The server says it applies flow control by offering the
``streamboard.flow_control`` extension in the scope (ASGI's way for a server
to announce a capability). When it is there and the response asks for it
(``whole_parts = True``: the export responses, whose parts are bounded
chunks), each part goes out as one message, and the part's size is what
bounds the server's buffer. Other responses keep Django's slices: an SSE
event may still be large, and a stalled client would hold a copy of all of
it in Twisted's buffer instead of one slice. Anywhere else (``runserver``,
the test client, plain daphne, uvicorn) the handler is Django's, unchanged.
The bytes of the body are the same either way; only their HTTP chunk
boundaries differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import django
from django.core.handlers.asgi import ASGIHandler
from django.http.response import HttpResponseBase

FLOW_CONTROL = "streamboard.flow_control"
_T = TypeVar("_T")

# Set per request: whether its server offers FLOW_CONTROL, then whether this response's
# parts go out whole. Context variables because Django calls ``chunk_bytes`` as a
# classmethod, with neither the scope nor the response.
_flow_control: ContextVar[bool] = ContextVar("streamboard_flow_control", default=False)
_whole_parts: ContextVar[bool] = ContextVar("streamboard_whole_parts", default=False)


def offers_flow_control(scope: dict[str, Any]) -> bool:
    return FLOW_CONTROL in (scope.get("extensions") or {})


class StreamingASGIHandler(ASGIHandler):
    """``ASGIHandler`` that sends each body part as one message under a flow-controlled server."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = _flow_control.set(offers_flow_control(scope))
        try:
            await super().handle(scope, receive, send)
        finally:
            _flow_control.reset(token)

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        whole = _flow_control.get() and getattr(response, "whole_parts", False)
        token = _whole_parts.set(whole)
        try:
            await super().send_response(response, send)
        finally:
            _whole_parts.reset(token)

    @classmethod
    def chunk_bytes(cls, data: Sequence[_T]) -> Iterator[tuple[Sequence[_T], bool]]:
        if _whole_parts.get():
            yield data, True
            return
        yield from super().chunk_bytes(data)


def get_streaming_asgi_application() -> StreamingASGIHandler:
    """``django.core.asgi.get_asgi_application`` with ``StreamingASGIHandler``."""
    django.setup(set_prefix=False)
    return StreamingASGIHandler()
