"""The one SSE reader of the tests: httpx-sse, an independent WHATWG parser.

Every test reads event streams through here, whether the bytes came from the
encoder, from the in-process ASGI app, or from a real server over a socket, so
"the client saw this event" means the same thing at every level.

httpx-sse also reports a block with no ``data:`` (the opening ``retry:`` hint)
as an unnamed ``message`` event, which a browser never dispatches; ``events_in``
and ``open_sse`` drop it, ``frames`` keeps everything the parser returns.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpx
from httpx_sse import EventSource, ServerSentEvent

from tests.support.http_body import ChunkedDecoder
from tests.support.live import LiveServer

READ_TIMEOUT = 10.0


def frames(body: bytes) -> list[ServerSentEvent]:
    """Every complete event in ``body``, as the parser returns it (an unfinished one is not)."""
    # A leading comment, as our streams send: a BOM at the start of ``body``
    # is then data, not the stream's own byte-order mark.
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=b": ok\n\n" + body
    )
    return list(EventSource(response).iter_sse())


def dispatched(events: Iterable[ServerSentEvent]) -> Iterator[ServerSentEvent]:
    """The events a browser's ``EventSource`` would dispatch."""
    return (event for event in events if event.data or event.event != "message")


def events_in(body: bytes) -> list[ServerSentEvent]:
    """The complete events in a body read so far, as a browser would see them."""
    return list(dispatched(frames(body)))


@contextmanager
def open_sse(
    server: LiveServer,
    path: str,
    cookie: str,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = READ_TIMEOUT,
) -> Iterator[Iterator[ServerSentEvent]]:
    """GET an event stream of a live server; yield its events as they arrive.

    Fails unless the answer is a 200 ``text/event-stream``. ``timeout`` bounds
    each read, so a stream that goes quiet fails the test instead of hanging it.
    """
    with (
        httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
        client.stream(
            "GET", server.url(path), headers={"Cookie": cookie, **(headers or {})}
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield dispatched(EventSource(response).iter_sse())


def read_events(
    server: LiveServer,
    path: str,
    cookie: str,
    until: Callable[[ServerSentEvent], bool],
    timeout: float = 30.0,
) -> list[ServerSentEvent]:
    """The events of a live stream up to the first one ``until`` accepts (or ``timeout``)."""
    events = []
    deadline = time.monotonic() + timeout
    with open_sse(server, path, cookie, timeout=timeout) as stream:
        for event in stream:
            events.append(event)
            if until(event) or time.monotonic() > deadline:
                break
    return events


class RawEventStream:
    """An SSE response over a raw socket, read only when and as much as the test says.

    For clients that read slowly or not at all, which an HTTP library hides:
    ``receive_buffer`` (set before connecting, so the TCP window is small
    too) and ``read(max_bytes)`` decide what the server can push. Events are
    parsed by httpx-sse once complete, as in every other test.
    """

    def __init__(
        self,
        server: LiveServer,
        path: str,
        cookie: str,
        *,
        receive_buffer: int | None = None,
        timeout: float = READ_TIMEOUT,
        content_type: bytes = b"text/event-stream",
    ) -> None:
        """``content_type``: another stream's (``text/plain``) to read its ``body`` raw."""
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect((server.host, server.port))
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nCookie: {cookie}\r\n\r\n".encode()
        )
        self.received = 0  # bytes off the socket, head included
        self.body = bytearray()  # the response body so far, de-chunked
        self._chunks = ChunkedDecoder()
        raw = b""
        while b"\r\n\r\n" not in raw:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed before the response head: {raw!r}")
            raw += data
        self.received += len(raw)
        head, rest = raw.split(b"\r\n\r\n", 1)
        assert head.split(b"\r\n", 1)[0].split()[1] == b"200", head
        assert content_type in head, head
        self._text = b""
        self._early = self._feed(rest)  # events that came with the head

    def _feed(self, data: bytes) -> list[ServerSentEvent]:
        self._chunks.feed(data)
        self.body += self._chunks.body
        self._text += bytes(self._chunks.body)
        self._chunks.body.clear()
        complete, sep, self._text = self._text.rpartition(b"\n\n")
        return events_in(complete + sep) if sep else []

    def read(self, max_bytes: int = 1 << 20) -> list[ServerSentEvent]:
        """One ``recv`` of at most ``max_bytes``; the events it completed (fails on close)."""
        if self._early:
            early, self._early = self._early, []
            return early
        data = self.sock.recv(max_bytes)
        if not data:
            raise ConnectionError("the server closed the stream")
        self.received += len(data)
        return self._feed(data)

    def body_until(self, text: bytes, timeout: float = 30.0) -> None:
        """Read at full speed until the body holds ``text`` (any stream, SSE or not)."""
        deadline = time.monotonic() + timeout
        self._early = []
        while text not in self.body:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not within {timeout}s; last: {self.body[-200:]!r}")
            self.read()

    def events_until(
        self, until: Callable[[ServerSentEvent], bool], timeout: float = 30.0
    ) -> list[ServerSentEvent]:
        """Read at full speed up to the first event ``until`` accepts; every event read."""
        deadline = time.monotonic() + timeout
        events: list[ServerSentEvent] = []
        while not any(until(event) for event in events[-200:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s; last: {events[-1:]}")
            events += self.read()
        return events

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawEventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
