"""Server worker processes: the command line each one runs and what must hold for several.

``serve --workers N`` and ``cluster`` both start their servers from here, so
a worker is always ``manage.py serve`` on an inherited listening socket
(``streams.http.listener``), supervised by ``streams.supervisor``.

Several server processes need nothing shared but the socket and the
database: each tails its own log files, and job progress reaches every
process through the job rows (polled every ``STREAMBOARD_EXPORT_POLL_SECONDS``
with the in-memory channel layer) or through Redis when ``REDIS_URL`` is set.
The one setting that cannot work is a database private to each process.
"""

from __future__ import annotations

import socket
import sys

from django.core.management.base import CommandError

from streams import conf
from streams.supervisor import Program


def manage_argv(*args: str) -> list[str]:
    """``python manage.py ARGS``, with this interpreter (the venv's) and this project."""
    return [sys.executable, str(conf.project_dir() / "manage.py"), *args]


def server_program(sock: socket.socket, count: int, *, proxy_headers: bool) -> Program:
    """``count`` workers serving ``sock``, each reporting readiness through a pipe."""
    argv = manage_argv("serve", "--listen-fd", str(sock.fileno()))
    if proxy_headers:
        argv.append("--proxy-headers")
    return Program(
        "server", argv, count=count, pass_fds=(sock.fileno(),), ready_fd_option="--ready-fd"
    )


def check_multi_process(processes: int) -> None:
    """Refuse a configuration that several processes cannot share (a clear error at start)."""
    if processes > 1 and conf.database_is_in_memory():
        raise CommandError(
            f"DATABASE_URL names an in-memory SQLite database, which {processes} processes "
            "cannot share (each would have its own, empty one): use a SQLite file or PostgreSQL."
        )
