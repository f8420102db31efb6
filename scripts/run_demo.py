"""``make run``: set up the embedded demo and serve it, Ctrl-C stops everything.

Steps: migrate, create the demo admin (printing its login), start three
processes side by side: the demo log writer, the task worker and the server
(``manage.py serve``), and then start the seeding of the demo orders as a
tracked job (``manage.py start_demo_seed``, which returns at once): the
worker seeds while the first page is served, and the job's bar shows on the
overview and on ``/jobs/``. A restart only tops the orders up, and with
enough of them starts no job at all. Ctrl-C (SIGINT) or SIGTERM stops
everything this script started; a seed cut short by it is put back in the
queue by the worker, and the next ``make run`` carries on. The demo runs
until one of the three services exits.
"""

from __future__ import annotations

import contextlib
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

    services = [
        subprocess.Popen([PY, "manage.py", "demo_log"], cwd=ROOT),
        subprocess.Popen([PY, "manage.py", "db_worker"], cwd=ROOT),
        subprocess.Popen(
            [PY, "manage.py", "serve", "--host", host, "--port", port, "--workers", CORES], cwd=ROOT
        ),
    ]
    print(
        f"\n  Streamboard: http://{host}:{port}/\n"
        f"  Sign in as {DEMO_USER} / {DEMO_PASSWORD}\n"
        "  The demo orders are seeded in the background: follow the bar on the overview.\n"
        "  Ctrl-C stops the server, the worker and the demo log writer.\n",
        flush=True,
    )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, stop)
    try:
        # A few queries, while the server starts: the worker picks the job up.
        manage("start_demo_seed", "--rows", rows, "--username", DEMO_USER, check=False)
        while all(service.poll() is None for service in services):
            with contextlib.suppress(subprocess.TimeoutExpired):
                services[-1].wait(timeout=1)
        failed = [c for c in services if c.poll() not in (None, 0)]
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in services:
            if child.poll() is None:
                child.terminate()
        for child in services:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


if __name__ == "__main__":
    sys.exit(main())
