"""The export's producer alone against the raw floor: CPU per row, one process, no HTTP.

    STREAMBOARD_VAR_DIR=var/bench .venv/bin/python bench/ndjson_producer.py [ROWS] [ROUNDS]

Runs ``streams.exports.producer.iter_export`` (the fetch, the fast path's
conversion and the NDJSON encoding, chunk by chunk, exactly as a streamed
export or the background task runs them) over the orders of the bench
database, then ``bench/raw_orders.py``'s ``produce`` (sqlite3 + orjson writing
byte-identical lines) over the same rows, in turns, and prints each one's
process CPU time per row. What a server adds on top (the hop to the event
loop, the socket writes) is measured by ``bench/ndjson_ab.sh`` and ``make
bench``; this is the part they share with the floor.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("STREAMBOARD_VAR_DIR", str(ROOT / "var" / "bench"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from bench import raw_orders  # noqa: E402
from dashboard.models import Order  # noqa: E402
from streams.exports.allow_list import get_exportable  # noqa: E402
from streams.exports.producer import iter_export  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    database = str(settings.DATABASES["default"]["NAME"])
    fields = get_exportable("dashboard.order").fields
    for round_ in range(1, rounds + 1):
        start = cpu_seconds()
        size = sum(
            len(c.data) for c in iter_export(Order.objects.filter(id__lte=rows), fields, "ndjson")
        )
        ours = cpu_seconds() - start
        start = cpu_seconds()
        raw_orders.produce(database, rows, lambda data: None)
        floor = cpu_seconds() - start
        print(
            f"round {round_}: iter_export {ours / rows * 1e6:.2f} us/row, "
            f"raw floor {floor / rows * 1e6:.2f} us/row, ratio {floor / ours:.2f}x "
            f"({size:,} bytes)"
        )


if __name__ == "__main__":
    main()
