"""``make run``: set up the embedded demo and serve it, Ctrl-C stops everything.

Steps: migrate, create the demo admin (printing its login), seed the demo
orders on first run, then start three processes side by side: the demo log
writer, the task worker and the server (``manage.py serve``). Children are
in their own process group so one Ctrl-C (or SIGTERM) stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEMO_USER = os.environ.get("DEMO_USER", "admin")
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "streamboard")
CORES = str(os.cpu_count() or 1)  # ``nproc``: one server worker per core, sharing the port


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=check)


def main() -> int:
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    rows = os.environ.get("SEED_ROWS", "1000000")
    manage("migrate", "--no-input", "-v", "0")
    manage("ensure_demo_admin", "--username", DEMO_USER, "--password", DEMO_PASSWORD)
    manage("seed_demo", "--rows", rows)

    children = [
        subprocess.Popen([PY, "manage.py", "demo_log"], cwd=ROOT),
        subprocess.Popen([PY, "manage.py", "db_worker"], cwd=ROOT),
        subprocess.Popen(
            [PY, "manage.py", "serve", "--host", host, "--port", port, "--workers", CORES], cwd=ROOT
        ),
    ]
    print(
        f"\n  Streamboard: http://{host}:{port}/\n"
        f"  Sign in as {DEMO_USER} / {DEMO_PASSWORD}\n"
        "  Ctrl-C stops the server, the worker and the demo log writer.\n",
        flush=True,
    )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            try:
                children[-1].wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        failed = [c for c in children if c.poll() not in (None, 0)]
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


if __name__ == "__main__":
    sys.exit(main())
