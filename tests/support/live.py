"""A real Streamboard server (``manage.py serve``) in a subprocess, for live tests.

The server reads the same file-based SQLite test database as the test (so
tests using it need ``transactional_db``: the rows must be committed) and is
stopped by process id when the test ends.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url() -> str:
    """The URL of the test database this process uses, for a child process."""
    settings = connection.settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    user, password = settings.get("USER", ""), settings.get("PASSWORD", "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def rss_kib(self) -> int:
        """The server's resident memory, read from /proc (the real process, not a mock)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # A browser test allows itself async-unsafe ORM calls; the servers and
    # workers it starts keep Django's guard on.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DATABASE_URL"] = database_url()
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Stop a child by process id: ``sig``, then SIGKILL if it outlives ``grace`` seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def run_server(
    env: Mapping[str, str] | None = None, args: Sequence[str] = (), command: str = "serve"
) -> Iterator[LiveServer]:
    """Start ``manage.py serve [ARGS]`` (or ``cluster``) on a free port; wait until it serves."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", command, "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=None,
    )
    try:
        assert process.stdout is not None
        # The ready line is printed once the server listens.
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline() if readable else b""
        if b"serving on" not in line:
            raise RuntimeError(f"server did not start within {READY_TIMEOUT}s: {line!r}")
        yield LiveServer(process, "127.0.0.1", port)
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()
