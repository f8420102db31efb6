"""``manage.py serve``: the production server alone (no set-up, no demo writer).

``--workers 1`` (the default) serves in this process, as it always did.
``--workers N`` binds the listening socket here and runs N worker processes
on it under a supervisor (``streams.supervisor``): each worker is this same
command with the hidden ``--listen-fd`` and ``--ready-fd`` options. Every
worker tails its own log files and reads job progress from the job rows (or
the Redis channel layer), so nothing but the socket is shared.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.asgi import application
from streams import conf
from streams.http.listener import bind, display_url, fd_endpoint
from streams.http.server import endpoint, serve
from streams.http.workers import check_multi_process, server_program
from streams.supervisor import Supervisor

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
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="server processes sharing the port, supervised (default 1: serve in this "
            "process); one per core (nproc) uses them all",
        )
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="take the client address and scheme from X-Forwarded-For and "
            "X-Forwarded-Proto (only behind a proxy that sets them, e.g. deploy/nginx.conf)",
        )
        # Set by the supervisor for its workers: serve this inherited socket, say when ready.
        parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
        parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        backlog: int,
        workers: int,
        proxy_headers: bool,
        listen_fd: int | None,
        ready_fd: int | None,
        **options: Any,
    ) -> None:
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, not {workers}.")
        if listen_fd is not None or workers == 1:
            url = f"http://{host}:{port}/"
            where = endpoint(host, port, backlog) if listen_fd is None else fd_endpoint(listen_fd)
            served = serve(
                application,
                [where],
                ready=lambda: self._ready(url, ready_fd),
                proxy_headers=proxy_headers,
                push=conf.push_delivery(),
            )
            if not served:
                sys.exit(1)
            return
        check_multi_process(workers)
        sock = listening_socket(host, port, backlog)
        with sock:
            url = display_url(sock)

            def ready(pids: list[int]) -> None:
                pid_list = ", ".join(map(str, pids))
                self.stdout.write(f"Streamboard serving on {url} ({workers} workers: {pid_list})")
                self.stdout.flush()

            supervisor = Supervisor(
                [server_program(sock, workers, proxy_headers=proxy_headers)],
                cwd=conf.project_dir(),
                on_ready=ready,
            )
            status = supervisor.run()
        if status:
            sys.exit(status)

    def _ready(self, url: str, ready_fd: int | None) -> None:
        if ready_fd is None:
            sys.stdout.write(f"Streamboard serving on {url}\n")
            sys.stdout.flush()
        else:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The socket every worker serves, bound here; a clear error when that cannot be."""
    try:
        sock = bind(host, port, backlog)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if sock.family != socket.AF_INET:
        sock.close()
        raise CommandError("--workers above 1 needs an IPv4 --host (Twisted adopts IPv4 only).")
    return sock
