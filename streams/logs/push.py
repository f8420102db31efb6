"""Push-mode targets for log streams: one client's format, redaction and socket.

``streams.logs.fanout`` writes a published group straight to every client in
push mode (``FanOut.push_directly``); what it writes comes from here, built
from the same pure functions as the ordinary path, so the bytes are the same:
``follow.lone_group_events`` (the events a client that keeps up gets for one
group), then the SSE encoder (``encoding.event_messages`` and
``streams.http.sse.encode``) or the text encoder (``encoding.to_text``),
then the HTTP chunk (``streams.http.push.DirectWriter.frame``). The fan-out
frames once per ``key`` and publish: every client with the same format,
redactor and chunking shares the bytes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

from django.http import HttpRequest

from streams.http.push import DirectWriter, WriteResult, writer_in
from streams.http.sse import HEARTBEAT, encode
from streams.logs.encoding import Format, event_messages, to_text
from streams.logs.fanout import LogBatch
from streams.logs.follow import LineFilter, lone_group_events
from streams.logs.redaction import Redactor

#: What a stream sends: SSE in a format, or plain text (``.txt``).
Encoding = Format | Literal["text"]


class LogPush:
    """A ``streams.logs.fanout.DirectTarget`` for one log stream's client."""

    __slots__ = ("_filter", "_key", "encoding", "writer")

    def __init__(self, writer: DirectWriter, encoding: Encoding, redactor: Redactor | None) -> None:
        self.writer = writer
        self.encoding = encoding
        self._filter = LineFilter(redactor=redactor)
        self._key: Hashable | None = None

    @property
    def key(self) -> Hashable:
        """Format, redactor (by identity: one instance per rule set) and chunking.

        Taken on first use, in push mode, once the head (which decides the
        chunking) is out.
        """
        if self._key is None:
            redactor = self._filter.redactor
            self._key = (self.encoding, id(redactor) if redactor else None, self.writer.chunked)
        return self._key

    def body(self, batches: tuple[LogBatch, ...]) -> bytes:
        """The body bytes the ordinary path sends for one group."""
        events = lone_group_events(batches, self._filter)
        if self.encoding == "text":
            return b"".join(to_text(event) for event in events)
        fmt = self.encoding
        return b"".join(encode(m) for event in events for m in event_messages(event, fmt))

    def frame(self, batches: tuple[LogBatch, ...]) -> bytes:
        return self.writer.frame(self.body(batches))

    def heartbeat_frame(self) -> bytes | None:
        # Plain text has no comment syntax: no heartbeat (as on the ordinary path).
        return None if self.encoding == "text" else self.writer.frame(encode(HEARTBEAT))

    def write(self, data: bytes) -> WriteResult:
        return self.writer.write(data)


def push_target(
    request: HttpRequest, encoding: Encoding, redactor: Redactor | None
) -> LogPush | None:
    """A target for the request's stream, when its server offers push-mode delivery.

    Only ASGI requests have a scope; under WSGI (or the test client's
    ``Client``) there is none, and the stream takes the ordinary path.
    """
    scope: dict[str, Any] = getattr(request, "scope", None) or {}
    writer = writer_in(scope)
    return None if writer is None else LogPush(writer, encoding, redactor)
