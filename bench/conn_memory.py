#!/usr/bin/env python3
"""Where each KiB of an open log stream goes: tracemalloc inside a real server.

    .venv/bin/python bench/conn_memory.py -n 300            # Python heap by site and package
    .venv/bin/python bench/conn_memory.py -n 300 --no-trace # RSS only (tracemalloc costs RSS)

The server is ``streams.http.server.serve`` with the site's ASGI application
and middleware, in this process, on a temporary SQLite database and log
file. A child process opens ``--warm`` streams and closes them (imports,
first-use caches), then ``-n`` streams of ``/streams/logs/bench/``, each read
up to its first ``lines`` event, and holds them. Snapshots are taken before
and after the ``-n`` (from a thread, while the loop serves); the difference
divided by ``-n`` is printed grouped by package and by allocation site.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT = r"""
import socket, sys
port, cookie, warm, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def open_streams(n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall((
            "GET /streams/logs/bench/?backfill=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode())
        socks.append(s)
    for s in socks:
        got = b""
        while b"event: lines" not in got:
            got += s.recv(65536)
    return socks
for s in open_streams(warm):
    s.close()
print("warm", flush=True); sys.stdin.readline()
held = open_streams(count)
print("held", flush=True); sys.stdin.readline()
"""


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def package(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.13/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest.split("/", 1)[0].removesuffix(".py")
    if str(ROOT) in filename:
        return "/".join(Path(filename).relative_to(ROOT).parts[:2])
    return filename


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conn-memory-"))
    log = work / "bench.log"
    log.write_text("INFO ready\n")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        STREAMBOARD_LOGS=f"bench={log}",
        STREAMBOARD_VAR_DIR=str(work),
    )
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from dashboard.asgi import application
    from streams.http.server import endpoint, serve
    from tests.support.live import free_port

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="x", is_staff=True)
    web = Client()
    web.force_login(user)
    cookie = web.cookies["sessionid"].value
    port = free_port()
    ready = threading.Event()
    if not args.no_trace:
        tracemalloc.start(1)

    def probe() -> None:
        ready.wait()
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(port), cookie, str(args.warm), str(args.n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None
        assert client.stdout is not None
        client.stdout.readline()
        time.sleep(1)  # let closed streams finish their cleanup before the baseline
        before = tracemalloc.take_snapshot() if not args.no_trace else None
        rss_before = rss_kib()
        client.stdin.write("\n")
        client.stdin.flush()
        client.stdout.readline()
        time.sleep(1)
        after = tracemalloc.take_snapshot() if not args.no_trace else None
        result: dict[str, object] = {
            "connections": args.n,
            "rss_kib_per_conn": round((rss_kib() - rss_before) / args.n, 1),
        }
        if before is not None and after is not None:
            diff = after.compare_to(before, "lineno")
            total = sum(stat.size_diff for stat in diff)
            by_package: dict[str, int] = defaultdict(int)
            for stat in diff:
                by_package[package(stat.traceback[0].filename)] += stat.size_diff
            result["heap_kib_per_conn"] = round(total / 1024 / args.n, 2)
            result["by_package_kib"] = {
                name: round(size / 1024 / args.n, 2)
                for name, size in sorted(by_package.items(), key=lambda kv: -kv[1])[: args.top]
            }
            result["by_site_kib"] = {
                f"{package(s.traceback[0].filename)}:{Path(s.traceback[0].filename).name}:"
                f"{s.traceback[0].lineno}": round(s.size_diff / 1024 / args.n, 2)
                for s in diff[: args.top]
            }
        print(json.dumps(result, indent=1), flush=True)
        client.kill()
        client.wait()
        os._exit(0)

    threading.Thread(target=probe, daemon=True).start()
    serve(application, [endpoint("127.0.0.1", port, 2048)], ready=ready.set)


if __name__ == "__main__":
    main()
