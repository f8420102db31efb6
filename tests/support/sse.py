"""The one SSE reader of the tests: httpx-sse, an independent WHATWG parser.

Every test reads event streams through here, whether the bytes came from the
encoder, from the in-process ASGI app, or from a real server over a socket, so
"the client saw this event" means the same thing at every level.

httpx-sse also reports a block with no ``data:`` (the opening ``retry:`` hint)
as an unnamed ``message`` event, which a browser never dispatches; ``events_in``
and ``open_sse`` drop it, ``frames`` keeps everything the parser returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpx
from httpx_sse import EventSource, ServerSentEvent

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
