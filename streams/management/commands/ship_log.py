"""``manage.py ship_log NAME PATH [--host LABEL]``: ship a log file to a ``redis:`` source.

Runs on the host that has the log (with the project installed; no database
is opened, no system check runs: the shipping host's settings need only
``REDIS_URL``). Follows ``PATH`` like the file source does and appends its
lines to the Redis stream of source ``NAME`` (``streams.logs.redis.shipper``),
resuming after the last line Redis has from this host. SIGTERM or Ctrl-C
stops it after the batch in flight.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import conf
from streams.logs.redis.shipper import BATCH_LINES, Shipper
from streams.logs.redis.stream import connect, stream_key

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
HOST_RE = re.compile(r"[^\s]{1,200}")


class Command(BaseCommand):
    help = "Follow a log file and append its lines to the Redis stream of a redis: log source."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the stream: STREAMBOARD_LOGS web=redis:NAME")
        parser.add_argument("path", type=Path, help="the log file to follow")
        parser.add_argument("--host", default=None, help="this host's label (default: hostname)")
        parser.add_argument("--batch", type=int, default=BATCH_LINES, help="lines per XADD batch")
        parser.add_argument(
            "--watcher", choices=["auto", "inotify", "watchfiles", "poll"], default="auto"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        if not NAME_RE.fullmatch(name):
            raise CommandError(f"NAME {name!r} may contain only letters, digits, - and _.")
        host: str = options["host"] or socket.gethostname()
        if not HOST_RE.fullmatch(host):
            raise CommandError(f"--host {host!r} must be 1 to 200 characters without spaces.")
        url = conf.redis_url()
        if not url:
            raise CommandError("REDIS_URL is not set: ship_log needs the Redis to ship to.")
        path = Path(os.path.abspath(options["path"]))
        asyncio.run(self.ship(url, name, path, host, options["batch"], options["watcher"]))

    async def ship(
        self, url: str, name: str, path: Path, host: str, batch: int, watcher: Any
    ) -> None:
        try:
            client = connect(url)
        except ValueError as exc:
            raise CommandError(f"REDIS_URL is not a Redis URL: {exc}") from None
        shipper = Shipper(
            client,
            name,
            path,
            host,
            maxlen=conf.redis_log_maxlen(),
            max_age=conf.redis_log_max_age(),
            batch_lines=batch,
            watcher=watcher,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shipper.stop)

        def ready(shipper: Shipper) -> None:
            after = shipper.resumed_from
            where = f"after {after.cursor} (batch {after.batch})" if after else "from the start"
            sys.stdout.write(
                f"ship_log: shipping {path} to {stream_key(name)} as {host}, {where}\n"
            )
            sys.stdout.flush()

        try:
            await shipper.run(on_ready=ready)
        finally:
            await client.aclose()
