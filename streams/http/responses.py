"""Streaming response classes: content type and anti-buffering headers in one place.

* Every stream's head goes with its first bytes (daphne sends the response
  head only with the first body chunk), and those come once the producer
  has subscribed to what it follows: what happens after the head is seen.
* ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` stop caches and
  nginx from holding the stream back. ``Connection`` is never set: it is
  hop-by-hop and belongs to the server.
* Only async iterators are accepted: under ASGI Django reads a sync iterator
  to the end before sending the first byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse

from streams.http.heartbeat import with_heartbeat
from streams.http.sse import HEARTBEAT, Message, encode

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RETRY_MS = 2000


class _AsyncStreamingResponse(StreamingHttpResponse):
    content_type_default = "application/octet-stream"
    # Each part in one ASGI message under a flow-controlled server (streams.http.handler):
    # only for responses whose parts are bounded chunks.
    whole_parts = False

    def __init__(self, content: AsyncIterator[bytes], **kwargs: Any) -> None:
        if not hasattr(content, "__aiter__"):
            raise TypeError(f"{type(self).__name__} needs an async iterator, got {content!r}")
        kwargs.setdefault("content_type", self.content_type_default)
        super().__init__(content, **kwargs)
        for header, value in STREAM_HEADERS.items():
            self.headers.setdefault(header, value)


async def encode_sse(
    messages: AsyncIterator[Message], heartbeat: float | None, retry_ms: int | None
) -> AsyncIterator[bytes]:
    """Frame ``messages`` as SSE: a comment with the first frame, then frames, heartbeats.

    The comment (and ``retry:``) rides with the producer's first message, not
    before it: daphne sends the head with the first body chunk, and a client
    that sees the head (``EventSource``'s ``open``) must see everything that
    happens after it. A log producer subscribes to its source before its
    first message, so the head means "following from here" (a Redis source
    learns its start in one round trip after the subscription). A producer
    that waits longer still sends the head within one heartbeat.

    ``heartbeat=None``: the producer sends its own ``HEARTBEAT`` when idle
    (cheaper per event than the generic wrapper; see ``streams.logs.follow``).
    """
    prelude = (f"retry: {retry_ms}\n: ok\n\n" if retry_ms is not None else ": ok\n\n").encode()
    if heartbeat is not None:
        messages = with_heartbeat(messages, heartbeat, HEARTBEAT)
    messages = aiter(messages)
    try:
        first = await anext(messages)
    except StopAsyncIteration:
        yield prelude
        return
    yield prelude + encode(first)
    async for message in messages:
        yield encode(message)


class EventStreamResponse(_AsyncStreamingResponse):
    """``text/event-stream`` from an async iterator of ``Event``/``Comment`` messages."""

    content_type_default = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        messages: AsyncIterator[Message],
        *,
        heartbeat: float | None,
        retry_ms: int | None = RETRY_MS,
        **kwargs: Any,
    ) -> None:
        """``heartbeat``: the idle interval chosen by the view, or ``None`` when
        ``messages`` yields ``HEARTBEAT`` itself while idle (no wrapper needed)."""
        super().__init__(encode_sse(messages, heartbeat, retry_ms), **kwargs)


class NDJSONResponse(_AsyncStreamingResponse):
    """``application/x-ndjson``: one JSON document per line, from already-encoded bytes."""

    content_type_default = "application/x-ndjson"
    whole_parts = True


class CSVResponse(_AsyncStreamingResponse):
    content_type_default = "text/csv; charset=utf-8"
    whole_parts = True


class TextStreamResponse(_AsyncStreamingResponse):
    """``text/plain`` for ``curl -N``."""

    content_type_default = "text/plain; charset=utf-8"
