"""The production ASGI server: daphne with a deep listen backlog, flow control and aborts.

Three things plain daphne (4.2) gets wrong for long streams, fixed here:

* **No flow control** (django/daphne#170). daphne's ``send`` hands the body
  chunk to Twisted's transport and returns at once, whether or not the bytes
  can leave. A client that stops reading therefore makes daphne buffer the
  whole rest of the response in memory, and every bounded queue upstream is
  pointless. ``StreamboardServer`` makes ``send`` of ``http.response.body``
  wait while the transport's write buffer is full, using Twisted's push
  producer protocol (see ``SendGate``).
* **Failures after the head look like clean (or hanging) responses.** When the
  application raises after the response has started, daphne tries to send a
  500 page on a response that is already under way (which fails) and leaves
  the connection open. ``StreamboardServer`` aborts the TCP connection instead
  (no terminating chunk), so ``curl`` and browsers report a broken transfer,
  never a clean short file.
* **The kernel hides backpressure.** Flow control engages only once the
  socket refuses bytes, and an autotuned send buffer takes megabytes of a
  slow client's stream first (2.7 MiB measured on loopback). Streaming
  responses set ``TCP_NOTSENT_LOWAT`` (see ``bound_kernel_buffer``).

And one thing it does slowly: Twisted writes on the loop's next turn, with two
``epoll_ctl`` calls per write. Body parts after the head go straight to the
socket when it takes them (``_write_directly``), and live log streams may skip
the ASGI path altogether (push mode, ``streams.http.push``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

from daphne.server import Server
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer  # type: ignore[import-untyped]

from streams.http.handler import FLOW_CONTROL
from streams.http.push import PUSH, DirectWriter, WriteResult, direct_writer

# Named by the socket module on Linux and macOS; elsewhere the kernel is left alone.
TCP_NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)
# Unsent bytes the kernel may hold per streaming response (measured: docs/benchmarks.md,
# "Kernel send buffers").
NOTSENT_LOWAT = 64 * 1024


@implementer(IPushProducer)
class SendGate:
    """A Twisted push producer whose pause state an asyncio task can wait on.

    It is registered on the request (``Request.registerProducer``, which
    forwards to ``HTTPChannel.registerProducer``): the channel is the
    transport's own producer and passes the transport's calls on to it.

    * ``pauseProducing``: Twisted's TCP transport holds more than its
      ``bufferSize`` (64 KiB) unsent; the gate closes.
    * ``resumeProducing``: the buffer drained into the kernel; the gate opens.
    * ``stopProducing``: the connection is gone; the gate opens for good so a
      waiting ``send`` returns (daphne then sends ``http.disconnect`` and the
      application is cancelled as usual; nothing stays blocked).

    Twisted's reactor is daphne's asyncio loop, so these callbacks and the
    application's coroutines run on one thread and share the ``asyncio.Event``.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self.stopped = False

    def pauseProducing(self) -> None:
        if not self.stopped:
            self._open.clear()

    def resumeProducing(self) -> None:
        self._open.set()

    def stopProducing(self) -> None:
        self.stopped = True
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    async def wait(self) -> None:
        """Return once the transport can take more (or the connection is gone)."""
        await self._open.wait()


class StreamboardServer(Server):  # type: ignore[misc]  # daphne ships no types: Server is Any
    """daphne's server with flow control and aborted broken responses.

    ``protocol`` below is daphne's ``WebRequest`` (a ``twisted.web`` request),
    one per HTTP request; keep-alive connections get a new one, and a new
    gate, for every request.

    ``notsent_lowat``: see ``bound_kernel_buffer``; ``None`` leaves the
    kernel's autotuning alone (``bench/send_buffer.py`` compares the two).
    """

    notsent_lowat: int | None = NOTSENT_LOWAT
    #: Offer push-mode delivery (``streams.http.push``); ``False`` (``STREAMBOARD_PUSH``)
    #: leaves every stream on the ordinary path.
    push: bool = True
    #: Send streaming body parts straight to the socket when it takes them
    #: (``_write_directly``), on every path.
    direct_writes: bool = True

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """daphne's ``send``: write the message, then wait while the transport is paused.

        The wait comes after the write, so a connection holds at most Twisted's
        64 KiB buffer plus one message (Django's 64 KiB slices, or one export
        chunk: ``streams.http.handler``), whatever the client does. The gate
        is registered with the first message (the head) and unregistered
        before the last one, once per request.
        """
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            # Unregister before daphne finishes the request: twisted.web logs a
            # producer left registered, and the next request on a keep-alive
            # connection registers its own.
            self._release_gate(protocol)
        streaming = message["type"] == "http.response.body" and message.get("more_body", False)
        details = self.connections.get(protocol)
        if streaming and details is not None and not details.get("kernel_bounded"):
            # Before the first body bytes reach the socket: they are what
            # would otherwise fill an autotuned send buffer.
            details["kernel_bounded"] = True
            self.bound_kernel_buffer(protocol)
        writer = details.get("writer") if streaming and details is not None else None
        if writer is None or not self._write_directly(protocol, writer, message, details):
            await super().handle_reply(protocol, message)
        if details is None or not _responding(protocol):
            return
        gate = details.get("send_gate")
        if gate is None:
            gate = details["send_gate"] = SendGate()
            protocol.registerProducer(gate, True)
        if gate.paused:
            await gate.wait()

    @staticmethod
    def _write_directly(
        protocol: Any, writer: DirectWriter, message: dict[str, Any], details: dict[str, Any]
    ) -> bool:
        """Send a body part after the head at once, if the socket takes it; else ``False``.

        What twisted.web's ``Request.write`` would send (one HTTP chunk), but
        straight to the socket when nothing is waiting in Twisted's buffer
        (``streams.http.push.DirectWriter``): Twisted's own ``write`` only
        buffers, registers the socket for writing (an ``epoll_ctl``), sends on
        the loop's next turn and unregisters it (another), per message per
        client. The head, the last part, an empty part, or a transport that
        cannot take the bytes go through daphne as before.
        """
        body = message.get("body", b"")
        if not body or not protocol.startedWriting or details.get("disconnected"):
            return False
        if writer.write_body(body) is WriteResult.REFUSED:
            return False
        protocol.sentLength += len(body)
        return True

    def bound_kernel_buffer(self, protocol: Any) -> None:
        """Cap the bytes the kernel accepts for this streaming response but cannot send yet.

        ``TCP_NOTSENT_LOWAT`` makes ``send`` return ``EAGAIN`` (and the socket
        poll as not writable) while the unsent part of the kernel's queue is
        above ``notsent_lowat``; Twisted then keeps the rest in its own 64 KiB
        buffer and pauses the ``SendGate``. Without it a slow client's socket
        takes up to ``net.ipv4.tcp_wmem``'s maximum (4 MiB by default) first.
        Bytes in flight (sent, not yet acknowledged) are not capped, so a fast
        client on a long path keeps its throughput. Only plain TCP sockets: a
        TLS or UNIX transport is left as it is.
        """
        if self.notsent_lowat is None or TCP_NOTSENT_LOWAT is None:
            return
        transport = getattr(protocol.channel, "transport", None)
        handle = transport.getHandle() if transport is not None else None
        if isinstance(handle, socket.socket) and handle.family in (
            socket.AF_INET,
            socket.AF_INET6,
        ):
            with contextlib.suppress(OSError):
                handle.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, self.notsent_lowat)

    def _release_gate(self, protocol: Any) -> None:
        details = self.connections.get(protocol)
        gate = details.pop("send_gate", None) if details is not None else None
        if gate is None:
            return
        gate.stopProducing()
        if protocol.channel is not None and protocol.producer is gate:
            protocol.unregisterProducer()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        """Start the application; abort the connection if it ends mid-response."""
        writer = direct_writer(protocol) if self.direct_writes else None
        self.offer_extensions(scope, writer)
        queue = super().create_application(protocol, scope)
        details = self.connections.get(protocol)
        if details is not None and writer is not None:
            details["writer"] = writer
        instance = details.get("application_instance") if details is not None else None
        if instance is not None:
            instance.add_done_callback(lambda _: self._application_done(protocol))
        return queue

    def offer_extensions(self, scope: dict[str, Any], writer: DirectWriter | None = None) -> None:
        """Announce in the scope what this server does beyond plain ASGI.

        * ``streamboard.flow_control``: every ``http.response.body`` send waits
          while the transport is full, so the application need not slice its
          body parts (``streams.http.handler``).
        * ``streamboard.push``: ``{"writer": DirectWriter}``, to write a
          stream's bytes straight to the socket (``streams.http.push``).
        """
        if scope.get("type") != "http":
            return
        extensions = scope.setdefault("extensions", {})
        extensions[FLOW_CONTROL] = {}
        if self.push and writer is not None:
            extensions[PUSH] = {"writer": writer}

    def _application_done(self, protocol: Any) -> None:
        """Abort (RST, no terminating chunk) a response the application left unfinished.

        This happens when the application raises after the response head went
        out (an export row that cannot be encoded, the database gone). It runs
        as soon as the application's task ends, before daphne's one-second
        ``application_checker`` would try to send a 500 page into the started
        response (which raises and leaves the connection hanging). Marking the
        request disconnected makes the checker only log the exception.
        """
        self._release_gate(protocol)
        if _responding(protocol):
            self.protocol_disconnected(protocol)
            protocol.channel.transport.abortConnection()


def _responding(protocol: Any) -> bool:
    """The response head was sent, the body is unfinished and the client is connected."""
    return bool(
        getattr(protocol, "_response_started", False)
        and not protocol.finished
        and protocol.channel is not None
    )


def endpoint(host: str, port: int, backlog: int) -> str:
    """A Twisted endpoint string; ``backlog`` replaces Twisted's default of 50."""
    interface = host.replace(":", r"\:")
    return f"tcp:port={port}:interface={interface}:backlog={backlog}"


def serve(
    application: Any,
    endpoints: list[str],
    *,
    ready: Callable[[], None],
    proxy_headers: bool = False,
    push: bool = True,
) -> bool:
    """Run a ``StreamboardServer`` until it is stopped; ``False`` if it could not listen.

    ``proxy_headers``: behind a reverse proxy (deploy/nginx.conf), the client's
    address and scheme come from ``X-Forwarded-For`` / ``X-Forwarded-Proto``,
    so Django sees ``https`` (CSRF's origin check needs it) and the real client.
    """
    forwarded = (
        {
            "proxy_forwarded_address_header": "X-Forwarded-For",
            "proxy_forwarded_port_header": "X-Forwarded-Port",
            "proxy_forwarded_proto_header": "X-Forwarded-Proto",
        }
        if proxy_headers
        else {}
    )
    server = StreamboardServer(
        application=application,
        endpoints=endpoints,
        ready_callable=ready,
        verbosity=0,
        application_close_timeout=5,
        **forwarded,
    )
    server.push = push
    server.run()
    return not server.abort_start
