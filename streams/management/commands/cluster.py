"""``manage.py cluster``: N server processes and M task workers under one supervisor.

A local cluster against the configured services (``DATABASE_URL``,
``REDIS_URL``): the servers share one listening socket like ``serve
--workers N``; the task workers are ``db_worker`` processes, which claim jobs
with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (on SQLite, one
write at a time, fine for a demo). Ctrl-C or SIGTERM stops everything; a
crashed process is restarted (``streams.supervisor``).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from streams import conf
from streams.http.listener import display_url
from streams.http.workers import check_multi_process, manage_argv, server_program
from streams.management.commands.serve import DEFAULT_BACKLOG, listening_socket
from streams.supervisor import Program, Supervisor


class Command(BaseCommand):
    help = "Run N Streamboard server processes and M task workers until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--servers", type=int, default=2, help="server processes (default 2)")
        parser.add_argument("--workers", type=int, default=2, help="task workers (default 2)")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG)
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="servers trust X-Forwarded-For/-Proto (behind deploy/nginx.conf)",
        )

    def handle(
        self,
        *args: Any,
        servers: int,
        workers: int,
        host: str,
        port: int,
        backlog: int,
        proxy_headers: bool,
        **options: Any,
    ) -> None:
        if servers < 1 or workers < 0:
            raise CommandError("--servers must be at least 1 and --workers at least 0.")
        check_multi_process(servers + workers)
        check_migrated()
        sock = listening_socket(host, port, backlog)
        with sock:
            url = display_url(sock)
            programs = [server_program(sock, servers, proxy_headers=proxy_headers)]
            if workers:
                programs.append(
                    Program("db_worker", manage_argv("db_worker", "--no-reload"), count=workers)
                )
            layer = conf.channel_layer_backend()

            def ready(pids: list[int]) -> None:
                self.stdout.write(
                    f"Streamboard cluster serving on {url}: {servers} servers, {workers} task "
                    f"workers (pids {', '.join(map(str, pids))}); database "
                    f"{connection.vendor}, channel layer {layer}. Ctrl-C stops them all."
                )
                self.stdout.flush()

            status = Supervisor(programs, cwd=conf.project_dir(), on_ready=ready).run()
        if status:
            sys.exit(status)


def check_migrated() -> None:
    """Refuse to start workers that would crash on missing tables, restart after restart."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError(
            "The database has unapplied migrations: run `manage.py migrate` first "
            "(`make cluster` does)."
        )
