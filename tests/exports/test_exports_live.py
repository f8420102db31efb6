"""Streamed exports over a real server: resumption, broken transfers, bytes, memory."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from dashboard.models import Order
from tests.support.demo_orders import make_customer, make_order, make_orders
from tests.support.http_body import get
from tests.support.live import LiveServer
from tests.support.personas import session_cookie

pytestmark = [pytest.mark.live, pytest.mark.services]

URL = "/exports/dashboard.order.ndjson"


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def seed(rows: int) -> None:
    call_command("seed_demo", rows=rows, stdout=io.StringIO(), stderr=io.StringIO())


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def test_a_broken_download_resumed_with_after_gives_the_full_export(
    live: LiveServer, cookie: str
) -> None:
    seed(20_000)
    full = get(live, URL, cookie)
    assert full.status == 200
    assert full.complete
    assert full.body.count(b"\n") == 20_000

    broken = get(live, URL, cookie, stop_after_bytes=1_000_000)
    assert not broken.complete
    assert 1_000_000 <= len(broken.body) < len(full.body)
    received, _, _partial_line = broken.body.rpartition(b"\n")
    received += b"\n"
    last_id = orjson.loads(received.splitlines()[-1])["id"]

    resumed = get(live, f"{URL}?after={last_id}", cookie)
    assert resumed.complete
    assert received + resumed.body == full.body


@pytest.mark.parametrize(
    ("fmt", "query"),
    [("ndjson", "status=paid&amount__gte=50"), ("csv", "fields=id,amount,metadata,created_at")],
)
def test_streamed_and_command_line_exports_are_identical(
    live: LiveServer, cookie: str, tmp_path: Path, fmt: str, query: str
) -> None:
    seed(5_000)
    streamed = get(live, f"/exports/dashboard.order.{fmt}?{query}", cookie)
    assert streamed.status == 200
    assert streamed.complete
    target = tmp_path / f"out.{fmt}"
    params = dict(pair.split("=", 1) for pair in query.split("&"))
    fields = params.pop("fields", None)
    call_command(
        "export",
        "dashboard.order",
        *[f"{k}={v}" for k, v in params.items()],
        output=str(target),
        fields=fields,
        stderr=io.StringIO(),
    )
    assert target.read_bytes() == streamed.body
    assert streamed.body.count(b"\n") > 100


def test_a_failure_midway_is_a_broken_transfer_not_a_short_file(
    live: LiveServer, cookie: str
) -> None:
    customer = make_customer()
    make_orders(9_000)
    # A JSON value orjson cannot encode (an integer beyond 64 bits): the export
    # fails after several chunks have been sent.
    bad = make_order(customer, 9_001, metadata={"too_big": 2**70})
    make_orders(100)
    response = get(live, URL, cookie, timeout=30)
    assert response.status == 200
    assert response.closed_by_server
    assert not response.complete
    received = response.body.count(b"\n")
    assert 2_000 <= received < Order.objects.filter(pk__lt=bad.pk).count() + 1


def test_server_memory_does_not_grow_with_the_row_count(live: LiveServer, cookie: str) -> None:
    seed(200_000)
    ten_thousandth = Order.objects.order_by("pk").values_list("pk", flat=True)[9_999]
    small = get(live, f"{URL}?id__lte={ten_thousandth}", cookie)
    assert small.complete
    assert small.body.count(b"\n") == 10_000
    after_small = peak_rss_kib(live.pid)
    large = get(live, URL, cookie, timeout=120)
    assert large.complete
    assert large.body.count(b"\n") == 200_000
    after_large = peak_rss_kib(live.pid)
    growth_mib = (after_large - after_small) / 1024
    assert growth_mib < 8, f"peak RSS grew {growth_mib:.1f} MiB from 10k to 200k rows"
