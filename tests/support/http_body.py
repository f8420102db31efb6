"""Raw HTTP/1.1 over a socket: response heads, and a GET that reads a chunked body as it arrives.

Live export tests need what an HTTP library hides: whether the body ended
with the terminating zero-length chunk (a complete transfer) or the server
closed the connection without it (a broken one), and the ability to hang up
after N bytes like a client whose download broke.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from tests.support.live import LiveServer


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the terminating chunk arrived
    closed_by_server: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class ChunkedDecoder:
    def __init__(self) -> None:
        self.buffer = b""
        self.body = bytearray()
        self.complete = False
        self.sizes: list[int] = []  # of the data chunks, as the server framed them

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while not self.complete:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.buffer[:line_end].split(b";")[0], 16)
            if len(self.buffer) < line_end + 2 + size + 2:
                return
            start = line_end + 2
            self.body += self.buffer[start : start + size]
            if size:
                self.sizes.append(size)
            self.buffer = self.buffer[start + size + 2 :]
            if size == 0:
                self.complete = True


def read_head(
    sock: socket.socket, buffer: bytes = b"", timeout: float = 10.0
) -> tuple[bytes, bytes]:
    """One response head from ``sock``: (head, what came after it, kept for the body)."""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buffer:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no response head within {timeout}s: {buffer!r}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before the response head: {buffer!r}")
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """The status code and the headers (names lower-cased) of a response head."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def get(
    server: LiveServer,
    path: str,
    cookie: str,
    *,
    stop_after_bytes: int | None = None,
    timeout: float = 60.0,
) -> RawResponse:
    """GET ``path``; read to the end, to a server close, or hang up after some bytes."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nCookie: {cookie}\r\n\r\n".encode()
        )
        head, rest = read_head(sock, timeout=timeout)
        status, headers = parse_head(head)
        decoder = ChunkedDecoder()
        if headers.get("transfer-encoding") != "chunked":
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    break
                rest += data
            return RawResponse(status, headers, rest, complete=len(rest) >= length)
        decoder.feed(rest)
        closed = False
        while not decoder.complete:
            if stop_after_bytes is not None and len(decoder.body) >= stop_after_bytes:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end of body within {timeout}s")
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            decoder.feed(data)
        return RawResponse(
            status,
            headers,
            bytes(decoder.body),
            complete=decoder.complete,
            closed_by_server=closed,
            extra={"chunk_sizes": decoder.sizes},
        )
