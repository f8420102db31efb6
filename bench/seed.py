#!/usr/bin/env python3
"""``make bench-seed``: how fast the demo orders go in (``dashboard.demo_data.seed_orders``).

Each round seeds ``--rows`` orders into a fresh database in a temporary
directory (SQLite by default; ``DATABASE_URL`` for PostgreSQL, emptied of
orders first), in a fresh ``manage.py shell`` process so no round warms the
next, and prints wall-clock rows/s (what a user waits for) and rows per
CPU-second of the seeding process (less moved by other load on the machine).
The target is 200,000 rows/s on SQLite for the 1,000,000 demo orders.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ROUND = """
import json, time
from dashboard.demo_data import seed_orders
from dashboard.models import Order
Order.objects.all().delete()
wall, cpu = time.perf_counter(), time.process_time()
seed_orders({rows})
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def one_round(python: str, rows: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as var:
        env = dict(os.environ, STREAMBOARD_VAR_DIR=var)
        manage = [python, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run(
            [*manage, "shell", "-c", ROUND.format(rows=rows)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "sqlite (temporary file)").split("@")[-1]
    print(f"seeding {args.rows:,} orders, {args.rounds} rounds, database {database}")
    rates = []
    for n in range(1, args.rounds + 1):
        wall, cpu = one_round(args.python, args.rows)
        rates.append(args.rows / wall)
        print(
            f"  round {n}: {wall:.2f} s, {args.rows / wall:,.0f} rows/s "
            f"({args.rows / cpu:,.0f} rows per CPU-second)",
            flush=True,
        )
    print(f"best {max(rates):,.0f} rows/s, median {statistics.median(rates):,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
