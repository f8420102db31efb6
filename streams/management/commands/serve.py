"""``manage.py serve``: the production server alone (no set-up, no demo writer)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard.asgi import application
from streams.http.server import StreamboardServer, endpoint

DEFAULT_BACKLOG = 2048


class Command(BaseCommand):
    help = "Serve Streamboard with daphne, a deep listen backlog and flow control."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--backlog",
            type=int,
            default=DEFAULT_BACKLOG,
            help="listen backlog (daphne's default of 50 makes 1,000 connecting clients "
            "wait a second for SYN retries)",
        )

    def handle(self, *args: Any, host: str, port: int, backlog: int, **options: Any) -> None:
        def ready() -> None:
            sys.stdout.write(f"Streamboard serving on http://{host}:{port}/\n")
            sys.stdout.flush()

        server = StreamboardServer(
            application=application,
            endpoints=[endpoint(host, port, backlog)],
            ready_callable=ready,
            verbosity=0,
            application_close_timeout=5,
        )
        server.run()
        if server.abort_start:
            sys.exit(1)
