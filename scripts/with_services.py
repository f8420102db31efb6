"""Run a command with a private PostgreSQL and Redis: ``with_services.py -- CMD ...``.

Starts both on free ports in temporary directories (``tests.services``),
exports ``DATABASE_URL`` and ``REDIS_URL`` to the command, and stops them by
process id afterwards. ``make test`` uses it to run the database- and
channel-layer-dependent tests again in the scale-out configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import postgres_server, redis_server  # noqa: E402


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: with_services.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with postgres_server() as database_url, redis_server() as redis_url:
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url)
        print(f"with_services: DATABASE_URL={database_url} REDIS_URL={redis_url}", flush=True)
        return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
