"""The ASGI application called in-process through asgiref's ``ApplicationCommunicator``.

This level proves what a real server cannot show from outside: read the
response frame by frame, send ``http.disconnect``, and then assert that the
producer's cleanup ran (its ``finally:``, the subscription gone, the shared
tailer stopped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.testing import ApplicationCommunicator

from dashboard.asgi import application

WAIT = 10.0


class StreamCall:
    """One GET to the ASGI app whose body is read as it is sent, until the client hangs up."""

    def __init__(
        self,
        path: str,
        cookie: str,
        query: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        raw_headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.communicator = ApplicationCommunicator(application, scope)
        self.body = bytearray()
        self.status = 0
        self.headers: dict[str, str] = {}

    async def start(self) -> None:
        """Send the (empty) request body and read the response head."""
        await self.communicator.send_input({"type": "http.request", "body": b""})
        message = await self.communicator.receive_output(WAIT)
        assert message["type"] == "http.response.start", message
        self.status = message["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}

    async def read_until(self, predicate: Callable[[bytes], bool]) -> bytes:
        """Read body frames until ``predicate`` holds for the body so far."""
        async with asyncio.timeout(WAIT):
            while not predicate(bytes(self.body)):
                message: dict[str, Any] = await self.communicator.receive_output(WAIT)
                assert message["type"] == "http.response.body", message
                self.body += message.get("body", b"")
        return bytes(self.body)

    async def hang_up(self) -> None:
        """Disconnect, then wait for the application to finish (re-raising its errors)."""
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(WAIT)
