"""A TCP forwarder whose connections a test can cut or hold: a broken or slow network."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.live import LiveServer


class CuttableProxy:
    """A TCP forwarder in front of the server whose open connections can be cut.

    Cutting them is what a dropped network does to the page: the browser's
    EventSource reconnects by itself, sending ``Last-Event-ID``. Holding
    them (``hold``) keeps what clients send until ``release``: an upstream
    that has not answered yet, while the test looks at what happened so far.
    ``upstream``: a server, or ``(host, port)`` of any TCP service (Redis).
    """

    def __init__(self, upstream: LiveServer | tuple[str, int]) -> None:
        self.upstream = upstream if isinstance(upstream, tuple) else (upstream.host, upstream.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.refuse = 0  # answer this many next connections with a 503
        self.refused: list[bytes] = []  # their request heads
        self.flowing = threading.Event()
        self.flowing.set()
        self.holding = threading.Event()  # set once held bytes wait for release
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refuse = self.refuse > 0
                self.refuse -= refuse
            if refuse:
                self._refuse(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.closed:
                    client.close()
                    server.close()
                    return
                self.sockets += [client, server]
                for source, sink, held in ((client, server, True), (server, client, False)):
                    pump = threading.Thread(
                        target=self._pump, args=(source, sink, held), daemon=True
                    )
                    self.threads.append(pump)
                    pump.start()

    def _refuse(self, client: socket.socket) -> None:
        with client:
            head = b""
            client.settimeout(5)
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head and (data := client.recv(65536)):
                    head += data
                client.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            self.refused.append(head)

    def _pump(self, source: socket.socket, sink: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                if held and not self.flowing.is_set():
                    self.holding.set()
                    self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def hold(self) -> None:
        """Keep what clients send from now on (``holding`` tells when some waits)."""
        self.holding.clear()
        self.flowing.clear()

    def release(self) -> None:
        """Forward what was held, and everything after it."""
        self.flowing.set()

    def cut(self) -> None:
        """Drop every open connection, both ways, as a broken network would."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.release()
        self.listener.close()
        self.cut()
        self.accepting.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)
