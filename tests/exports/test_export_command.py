"""``manage.py export``: same bytes as the producer, same validation as the view."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from dashboard.models import Order
from streams.exports.allow_list import get_exportable
from streams.exports.producer import ExportEncodingError, iter_export
from tests.support.demo_orders import make_awkward_orders, make_orders
from tests.support.terminal import TerminalIO


def export(*args: str, **options: object) -> str:
    """Run the command with a terminal on stderr; what it drew there."""
    err = TerminalIO()
    call_command("export", *args, stderr=err, **options)
    return err.getvalue()


def test_it_writes_the_whole_export_to_a_file(db: None, tmp_path: Path) -> None:
    make_awkward_orders()
    target = tmp_path / "orders.ndjson"
    err = export("dashboard.order", output=str(target))
    fields = get_exportable("dashboard.order").fields
    expected = b"".join(c.data for c in iter_export(Order.objects.all(), fields, "ndjson"))
    assert target.read_bytes() == expected
    assert "6/6 rows" in err
    assert not (tmp_path / "orders.ndjson.part").exists()


def test_filters_fields_and_after_select_like_the_view(db: None, tmp_path: Path) -> None:
    orders = make_orders(40)
    target = tmp_path / "out.ndjson"
    export(
        "dashboard.order",
        "status=shipped",
        "quantity__lte=30",
        f"after={orders[4].pk}",
        output=str(target),
        fields="id,status",
    )
    records = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    expected = [
        o.pk for o in orders if o.status == "shipped" and o.quantity <= 30 and o.pk > orders[4].pk
    ]
    assert [r["id"] for r in records] == expected
    assert all(list(r) == ["id", "status"] for r in records)


def test_the_format_follows_the_output_suffix(db: None, tmp_path: Path) -> None:
    pks = [order.pk for order in make_orders(3)]
    target = tmp_path / "out.csv"
    export("dashboard.order", output=str(target), fields="id,amount")
    rows = "".join(f"{pk},0.0{n}\r\n" for n, pk in enumerate(pks, 1))
    assert target.read_bytes() == f"id,amount\r\n{rows}".encode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["auth.group"], "not configured for export"),
        (["dashboard.order", "colour=red"], "unknown parameter colour"),
        (["dashboard.order", "status"], "not a name=value filter"),
        (["dashboard.order", "after=x"], "after"),
    ],
)
def test_bad_queries_fail_with_the_form_message(
    db: None, tmp_path: Path, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        export(*args, output=str(tmp_path / "x.ndjson"))
    assert not (tmp_path / "x.ndjson").exists()


def test_a_failure_midway_leaves_no_file(db: None, tmp_path: Path) -> None:
    third = make_orders(5)[2]
    Order.objects.filter(pk=third.pk).update(metadata={"big": 2**70})
    target = tmp_path / "broken.ndjson"
    with pytest.raises(ExportEncodingError, match=f"pk={third.pk} "):
        export("dashboard.order", output=str(target))
    assert not target.exists()
    assert not (tmp_path / "broken.ndjson.part").exists()


def test_a_device_output_is_written_in_place_not_renamed_over(db: None, tmp_path: Path) -> None:
    make_orders(25)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    call_command("export", "dashboard.order", "--output", str(fifo), stderr=io.StringIO())
    reader.join(timeout=30)
    assert fifo.is_fifo()  # still the pipe: nothing was renamed over it
    assert not (tmp_path / "pipe.part").exists()
    assert received
    assert received[0].count(b"\n") == Order.objects.count() == 25


def test_the_bar_on_a_terminal_shows_count_rate_elapsed_and_eta(db: None, tmp_path: Path) -> None:
    make_orders(6)
    err = export("dashboard.order", output=str(tmp_path / "out.ndjson"))
    final = err.split("\r")[-1]
    pattern = r"dashboard\.order \[#{30}\] 100% 6/6 rows [\d,]+/s elapsed \d+\.\ds eta 0\.0s\n"
    assert re.fullmatch(pattern, final), final


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(db: None, tmp_path: Path) -> None:
    make_orders(6)
    err = io.StringIO()
    call_command("export", "dashboard.order", "--output", str(tmp_path / "o.ndjson"), stderr=err)
    assert (tmp_path / "o.ndjson").read_bytes().count(b"\n") == 6
    assert err.getvalue() == ""


def test_the_command_honours_the_chunk_size_setting(db: None, tmp_path: Path) -> None:
    make_orders(7)
    with (
        override_settings(STREAMBOARD_EXPORT_CHUNK_SIZE=3),
        CaptureQueriesContext(connection) as queries,
    ):
        export("dashboard.order", output=str(tmp_path / "o.ndjson"), fields="id")
    chunk_queries = [q["sql"] for q in queries if "LIMIT 3" in q["sql"]]
    assert len(chunk_queries) == 3  # 3 + 3 + 1 rows
    assert (tmp_path / "o.ndjson").read_bytes().count(b"\n") == 7
