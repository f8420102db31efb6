"""A TCP forwarder whose open connections a test can cut: a dropped network, on demand."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.live import LiveServer


class CuttableProxy:
    """A TCP forwarder in front of the server whose open connections can be cut.

    Cutting them is what a dropped network does to the page: the browser's
    EventSource reconnects by itself, sending ``Last-Event-ID``.
    """

    def __init__(self, upstream: LiveServer) -> None:
        self.upstream = (upstream.host, upstream.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.refuse = 0  # answer this many next connections with a 503
        self.refused: list[bytes] = []  # their request heads
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
                for source, sink in ((client, server), (server, client)):
                    pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
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

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

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
        self.listener.close()
        self.cut()
        self.accepting.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)
