"""Run a command with a private PostgreSQL and Redis: ``with_services.py -- CMD ...``.

Starts both on free ports in temporary directories (``tests.support.services``),
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

import pytest  # noqa: E402

from tests.support.services import postgres_server, redis_server  # noqa: E402


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: with_services.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        with postgres_server() as database_url, redis_server() as redis_url:
            env = dict(
                os.environ,
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                STREAMBOARD_SCALE_OUT_RUN="1",
            )
            print(f"with_services: DATABASE_URL={database_url} REDIS_URL={redis_url}", flush=True)
            return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
    except pytest.skip.Exception as skipped:
        # Only reachable without STREAMBOARD_REQUIRE_SERVICES (CI sets it: then it fails).
        print(f"with_services: skipped, {skipped.msg}", file=sys.stderr)
        return 0
    except pytest.fail.Exception as failed:
        print(f"with_services: {failed.msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
