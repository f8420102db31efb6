#!/usr/bin/env python3
"""SSE fan-out: two server processes behind nginx, beside one process direct.

    .venv/bin/python bench/cluster.py --clients 1000 --events 50

Not part of ``make test``. Both systems serve one log file source
(``STREAMBOARD_LOGS=bench=...``, ``format=json``) from a fresh SQLite
database in a temporary directory, and both are measured by the shared load
client ``../shared/bench/sse_fanout.py`` (connect times, end-to-end latency
from the line appended to the event received, lost and duplicated events,
server KiB per connection):

* ``direct``: one ``manage.py serve`` process, the client on its port.
* ``nginx-2``: ``manage.py serve --workers 2 --proxy-headers`` (two server
  processes on one port under the supervisor; its PID covers both, RSS with
  children) behind a private nginx running the repository's
  ``deploy/nginx.conf`` (``tests.support.services.deploy_site``) with one
  extra plain-HTTP ``listen`` on its TLS server block: the load client speaks
  HTTP/1.1 without TLS, and every proxy directive is the file's own.

nginx's own memory and CPU are not in the server figures. Each run is
bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import SESSION_CODE  # noqa: E402
from tests.support.services import Nginx, deploy_site, nginx_server  # noqa: E402

# ../shared/bench from the project's root (from a git worktree one level further down).
SSE_FANOUT = (
    next(
        (
            candidate
            for candidate in (ROOT.parent / "shared", ROOT.parents[1] / "shared")
            if (candidate / "bench" / "sse_fanout.py").exists()
        ),
        ROOT.parent / "shared",
    )
    / "bench"
    / "sse_fanout.py"
)
PATH = "/streams/logs/bench/?format=json&backfill=0"


def log(message: str) -> None:
    print(f"[cluster bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling a port with a deadline
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.log_file = work / "bench.log"
        self.log_file.write_text("")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "REDIS_URL")}
        env.update(
            STREAMBOARD_VAR_DIR=str(self.work),
            DATABASE_URL=f"sqlite:///{self.work / 'bench.sqlite3'}",
            STREAMBOARD_LOGS=f"bench={self.log_file}",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        return env

    def session(self) -> str:
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=self.env(), check=True
        )
        out = subprocess.run(
            [*manage, "shell", "-c", SESSION_CODE],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        match = re.search(r"SESSION (\w+)", out)
        if match is None:
            raise SystemExit(f"no session: {out!r}")
        return match.group(1)

    @contextmanager
    def server(self, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_listening(port, process)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def fanout(self, url: str, pid: int, session: str, label: str) -> dict[str, Any]:
        args = self.args
        command = [
            *(sys.executable, str(SSE_FANOUT), url, "--append-to", str(self.log_file)),
            *("--server-pid", str(pid), "-n", str(args.clients), "--events", str(args.events)),
            *("--interval", str(args.interval), "--max-seconds", str(args.max_seconds)),
            *("--header", f"Cookie: sessionid={session}", "--label", label, "-q"),
        ]
        log(f"{label}: {args.clients} clients, {args.events} events")
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=args.max_seconds + 30, check=False
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"{label}: sse_fanout gave no result: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def direct(self, session: str) -> dict[str, Any]:
        port = free_port()
        with self.server(port) as process:
            return self.fanout(f"http://127.0.0.1:{port}{PATH}", process.pid, session, "direct")

    def behind_nginx(self, session: str) -> dict[str, Any]:
        port, plain = free_port(), free_port()
        static_root = self.work / "static"
        static_root.mkdir(exist_ok=True)

        def site(nginx: Nginx) -> str:
            text = deploy_site(nginx, [f"127.0.0.1:{port}"], static_root)
            tls_listen = f"listen 127.0.0.1:{nginx.https_port} ssl http2;"
            return text.replace(tls_listen, f"{tls_listen}\n    listen 127.0.0.1:{plain};")

        connections = 2 * self.args.clients + 256
        with (
            self.server(port, "--workers", "2", "--proxy-headers") as process,
            nginx_server(site, worker_connections=connections),
        ):
            return self.fanout(f"http://127.0.0.1:{plain}{PATH}", process.pid, session, "nginx-2")


def row(result: dict[str, Any]) -> str:
    connect, latency = result.get("connect", {}), result.get("latency_ms", {})
    connect_ms = connect.get("ms", {})
    last, server = result.get("last_client_ms", {}), result.get("server", {})

    def ms(d: dict[str, Any], key: str) -> str:
        value = d.get(key)
        return f"{value:.1f}" if isinstance(value, int | float) else "-"

    return (
        f"| {result.get('label')} | {connect.get('ok')}/{result.get('clients', '?')} "
        f"| {ms(connect_ms, 'p50')} | {ms(connect_ms, 'p99')} | {ms(latency, 'p50')} "
        f"| {ms(latency, 'p99')} | {ms(last, 'p99')} | {result.get('lost')} "
        f"| {result.get('duplicates')} | {ms(server, 'kib_per_conn')} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--max-seconds", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the raw results too")
    args = parser.parse_args()
    if not SSE_FANOUT.exists():
        raise SystemExit(f"{SSE_FANOUT} is missing (the shared benchmark clients)")
    work = Path(tempfile.mkdtemp(prefix="streamboard-cluster-bench-"))
    try:
        bench = Bench(args, work)
        session = bench.session()
        results = [bench.direct(session), bench.behind_nginx(session)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        "| system | connected | connect p50 ms | connect p99 ms | latency p50 ms "
        "| latency p99 ms | last client p99 ms | lost | duplicates | server KiB/conn |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for result in results:
        print(row(result))
    if args.json:
        for result in results:
            print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
