"""The production ASGI server: daphne, with a deep listen backlog.

(Flow control is added here: see ``FlowControlServer``.)
"""

from __future__ import annotations

from daphne.server import Server


class StreamboardServer(Server):
    """daphne's server; the place where Streamboard's server behaviour lives."""


def endpoint(host: str, port: int, backlog: int) -> str:
    """A Twisted endpoint string; ``backlog`` replaces Twisted's default of 50."""
    interface = host.replace(":", r"\:")
    return f"tcp:port={port}:interface={interface}:backlog={backlog}"
