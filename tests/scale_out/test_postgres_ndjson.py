"""The NDJSON stream on PostgreSQL keeps constant memory at 1,000,000 rows.

Runs in the services pass only (``DATABASE_URL`` is the private PostgreSQL):
the rows are seeded with ``COPY`` (``dashboard.demo_data.seed_orders``) and
streamed by a real ``manage.py serve`` to a client that counts the body
without keeping it (about 394 MiB). The server's peak resident memory
(``VmHWM``, read from /proc) after a 10,000-row export is the baseline: the
1,000,000-row export may raise it by less than 16 MiB, the benchmark's
target, while the body is 24 times that, so memory that grew with the rows
(a result set fetched whole, a buffered response) could not pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson
import pytest
from django.contrib.auth.models import User
from django.db import connection

from dashboard.demo_data import seed_orders
from dashboard.models import Order
from tests.support.live import LiveServer
from tests.support.personas import session_cookie

pytestmark = [
    pytest.mark.live,
    pytest.mark.services,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs DATABASE_URL=PostgreSQL: make test's second pass (scripts/with_services.py)",
    ),
]

ROWS = 1_000_000
URL = "/exports/dashboard.order.ndjson"


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def stream(server: LiveServer, path: str, cookie: str) -> tuple[int, int, bytes]:
    """Read a whole export without keeping it: (bytes, lines, the last line)."""
    size = lines = 0
    tail = b""
    timeout = httpx.Timeout(60.0, connect=5.0)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", server.url(path), headers={"Cookie": cookie}) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-4096:]
    return size, lines, tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]


def test_the_ndjson_stream_on_postgresql_keeps_constant_memory_at_a_million_rows(
    live: LiveServer, transactional_db: None, superuser: User
) -> None:
    assert connection.vendor == "postgresql"
    cookie = session_cookie(superuser)
    assert seed_orders(ROWS) == ROWS
    pks = Order.objects.order_by("pk").values_list("pk", flat=True)
    small_last, last = pks[9_999], Order.objects.order_by("-pk").values_list("pk", flat=True)[0]

    size, lines, final = stream(live, f"{URL}?id__lte={small_last}", cookie)
    assert lines == 10_000
    assert orjson.loads(final)["id"] == small_last
    baseline = peak_rss_kib(live.pid)

    size, lines, final = stream(live, URL, cookie)
    growth_mib = (peak_rss_kib(live.pid) - baseline) / 1024
    assert lines == ROWS
    assert orjson.loads(final)["id"] == last
    print(f"{ROWS:,} rows, {size / 2**20:.0f} MiB: peak RSS grew {growth_mib:.1f} MiB")
    assert size > 20 * 16 * 2**20, "the body must dwarf the allowed growth"
    assert growth_mib < 16, f"peak RSS grew {growth_mib:.1f} MiB from 10,000 to {ROWS:,} rows"
