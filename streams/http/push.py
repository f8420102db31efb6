"""Writing a stream's bytes straight to its socket: the server's half of push-mode delivery.

A live log sends the same few hundred bytes to a thousand clients ten times
a second. Through ASGI each of those deliveries is a task wake-up, a chain
of async generators, Django's response loop, daphne's ``handle_reply`` and
Twisted's ``write``, which only buffers: the bytes leave on the next turn
of the loop, after an ``epoll_ctl`` to register the socket for writing and
another to drop it. ``StreamboardServer`` therefore offers each HTTP
request a ``DirectWriter`` in the scope (the ``streamboard.push`` extension,
``{"writer": DirectWriter}``). A producer that holds the bytes every client
of a source gets (``streams.logs.fanout``) writes them with it from the
source's own callback: one ``send`` per client, framed once for all.

The writer writes only what the transport can take at once, in order with
what the ordinary path wrote before:

* ``SENT``: the bytes are in the kernel's socket buffer (``send`` took them
  all), or queued in Twisted's buffer right behind a body part the ordinary
  path has just written (flushed on the loop's next turn, in order).
* ``BEHIND``: written, but the socket took only part (the client is not
  keeping up, ``TCP_NOTSENT_LOWAT`` reached): Twisted holds the rest and
  flushes it when the socket drains. The producer goes back to the ordinary
  path, whose ``send`` waits for that (``streams.http.server.SendGate``).
* ``REFUSED``: nothing written: the connection is gone or closing, or
  Twisted's buffer is at its bound (64 KiB), or the head is not out yet.

A server that does not offer the extension (``runserver``, the test client,
plain daphne, uvicorn) leaves the stream on the ordinary path, which sends
the same bytes. Only plain TCP: a transport that is not a TCP socket gets no
writer.
"""

from __future__ import annotations

import enum
import socket
from typing import Any, Final

PUSH: Final = "streamboard.push"


class WriteResult(enum.IntEnum):
    SENT = 0
    BEHIND = 1
    REFUSED = 2


class DirectWriter:
    """Writes body bytes of one HTTP response straight to its TCP socket (see the module)."""

    __slots__ = ("_request",)

    def __init__(self, request: Any) -> None:
        """``request``: daphne's ``WebRequest`` (a ``twisted.web.http.Request``)."""
        self._request = request

    @property
    def chunked(self) -> bool:
        """Whether the body is sent in HTTP chunks (HTTP/1.1 without Content-Length)."""
        return bool(self._request.chunked)

    def frame(self, body: bytes) -> bytes:
        """``body`` as the bytes on the wire: one HTTP chunk, or itself.

        The same for every chunked client: a producer frames once per
        ``chunked`` value and shares the result.
        """
        if not self._request.chunked:
            return body
        return b"%x\r\n%s\r\n" % (len(body), body)

    def write(self, data: bytes) -> WriteResult:
        """Write ``data`` (already ``frame``-d) now, or refuse; see the module's results."""
        return self._write((data,), len(data))

    def write_body(self, body: bytes) -> WriteResult:
        """``write(frame(body))``, without first copying ``body`` into a framed copy.

        For one response's own body parts (an export chunk is about 800 KiB):
        the chunk header, the body and its CRLF go to ``sendmsg`` as they are,
        and only what the socket does not take is copied, into Twisted's buffer.
        """
        if not self._request.chunked:
            return self.write(body)
        head = b"%x\r\n" % len(body)
        return self._write((head, body, b"\r\n"), len(head) + len(body) + 2)

    def _write(self, parts: tuple[bytes, ...], size: int) -> WriteResult:
        transport = self._transport()
        if transport is None or not size:
            return WriteResult.REFUSED
        pending = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        if pending:
            if pending + size > transport.bufferSize:
                return WriteResult.REFUSED
            transport.writeSequence(parts)  # behind the ordinary path's last part, in order
            return WriteResult.SENT
        sock = transport.socket
        try:
            sent = sock.send(parts[0]) if len(parts) == 1 else sock.sendmsg(parts)
        except BlockingIOError:
            sent = 0
        except OSError:
            return WriteResult.REFUSED  # reset or closed: Twisted sees it on its side
        if sent == size:
            return WriteResult.SENT
        unsent = []
        for part in parts:
            if sent < len(part):
                unsent.append(part[sent:] if sent else part)
            sent = max(0, sent - len(part))
        transport.writeSequence(unsent)
        return WriteResult.BEHIND

    def _transport(self) -> Any:
        """The request's transport if it can be written to now, else ``None``."""
        request = self._request
        channel = request.channel
        if channel is None or request.finished or request._disconnected:
            return None
        if not request.startedWriting:
            return None
        transport = channel.transport
        if (
            transport is None
            or not transport.connected
            or transport.disconnecting
            or transport.producerPaused
        ):
            return None
        return transport


def direct_writer(protocol: Any) -> DirectWriter | None:
    """A writer for ``protocol`` (a daphne ``WebRequest``), if its transport is plain TCP."""
    channel = getattr(protocol, "channel", None)
    transport = getattr(channel, "transport", None)
    sock = getattr(transport, "socket", None)
    if (
        getattr(protocol, "method", None) == b"HEAD"  # no body: twisted.web drops writes
        or not isinstance(sock, socket.socket)
        or sock.family not in (socket.AF_INET, socket.AF_INET6)
        or getattr(transport, "TLS", False)
    ):
        return None
    return DirectWriter(protocol)


def writer_in(scope: dict[str, Any]) -> DirectWriter | None:
    """The request's ``DirectWriter``, when its server offers push-mode delivery."""
    offered = (scope.get("extensions") or {}).get(PUSH)
    writer = offered.get("writer") if isinstance(offered, dict) else None
    return writer if isinstance(writer, DirectWriter) else None
