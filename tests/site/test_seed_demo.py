"""Demo seeding: tops up to N rows, every value valid through the ORM, same rows however split.

Marked ``services``: ``make test`` runs it again on PostgreSQL, where the rows
come from ``generate_series`` instead of SQLite's temp table of row numbers.
"""

from __future__ import annotations

import datetime
import io
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from dashboard.demo_data import BLOCK, ensure_customers, python_batches, seed_orders
from dashboard.models import Customer, Order
from tests.support.terminal import TerminalIO
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.services

VALUE_FIELDS = [
    "uuid",
    "reference",
    "customer_id",
    "status",
    "quantity",
    "amount",
    "note",
    "placed_on",
    "is_gift",
    "metadata",
    "created_at",
    "updated_at",
]


def seed(rows: int, **options: object) -> tuple[str, str]:
    out, err = io.StringIO(), TerminalIO()
    call_command("seed_demo", rows=rows, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def all_values() -> list[tuple[Any, ...]]:
    return list(Order.objects.order_by("reference").values_list(*VALUE_FIELDS))


def test_the_command_inserts_the_requested_rows_with_progress(db: None) -> None:
    out, err = seed(2500, batch_size=1000)
    assert Order.objects.count() == 2500
    assert Customer.objects.count() == 1000
    assert "inserted 2,500 orders" in out
    assert "2,500/2,500 rows" in err
    assert "100%" in err


def test_progress_is_reported_from_zero_after_each_batch(db: None) -> None:
    calls: list[tuple[int, int]] = []
    inserted = seed_orders(2_500, batch=1_000, on_progress=lambda d, t: calls.append((d, t)))
    assert inserted == 2_500
    assert calls == [(0, 2_500), (1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]


def test_every_field_reads_back_through_the_orm_as_its_type(db: None) -> None:
    # Crosses a generator block (PostgreSQL) and ends with a batch shorter than the others.
    count = BLOCK + 57
    seed_orders(count, batch=3_001)
    orders = list(Order.objects.select_related("customer").order_by("pk"))
    assert len(orders) == count
    assert [o.reference for o in orders] == [f"ORD-{n:08d}" for n in range(1, count + 1)]
    for order in orders[:: count // 300]:
        order.full_clean(exclude=["customer"])  # every value fits its field
        assert isinstance(order.uuid, uuid.UUID)
        assert order.uuid.version == 7
        assert order.uuid.variant == uuid.RFC_4122
        assert order.status in Order.Status.values
        assert isinstance(order.quantity, int)
        assert 1 <= order.quantity <= 20
        assert isinstance(order.amount, Decimal)
        assert order.amount == order.amount.quantize(Decimal("0.01")) > 0
        assert isinstance(order.is_gift, bool)
        assert isinstance(order.note, str)
        assert order.created_at.tzinfo is not None
        assert order.placed_on == order.created_at.astimezone(datetime.UTC).date()
        assert order.updated_at >= order.created_at
        assert set(order.metadata) == {"channel", "items", "coupon"}
        assert order.metadata["items"][0]["qty"] == order.quantity
        assert order.customer.country
    # Orders are placed in time order and their version 7 UUIDs follow.
    times = [o.created_at for o in orders]
    assert times == sorted(times)
    assert [o.uuid.hex for o in orders] == sorted(o.uuid.hex for o in orders)
    assert len({o.uuid for o in orders}) == count
    for field in ("status", "quantity", "note", "is_gift", "customer_id"):
        assert Order.objects.values(field).distinct().count() > 1, field
    assert Order.objects.filter(metadata__coupon__isnull=False).exists()
    assert Order.objects.filter(metadata__channel="web").exists()


def test_a_top_up_gives_the_rows_a_single_seed_would_have(db: None) -> None:
    seed_orders(1_234, batch=500)
    whole = all_values()
    Order.objects.all().delete()
    seed_orders(300, batch=7)
    assert seed_orders(1_234, batch=100_000) == 934
    assert all_values() == whole
    assert Customer.objects.count() == 1000  # customers are reused, not duplicated


def test_a_different_seed_gives_different_rows(db: None) -> None:
    seed_orders(50)
    first = all_values()
    Order.objects.all().delete()
    seed_orders(50, seed=7)
    assert all_values() != first


def test_the_command_tops_up_when_rows_exist(db: None) -> None:
    seed(300)
    out, _ = seed(500)
    assert Order.objects.count() == 500
    assert "inserted 200 orders, 500 in total" in out


def test_it_does_nothing_when_there_are_enough_rows(db: None) -> None:
    seed(100)
    first = list(Order.objects.values_list("pk", flat=True))
    out, err = seed(50)
    assert "100 orders already, nothing to do" in out
    assert err == ""
    assert list(Order.objects.values_list("pk", flat=True)) == first
    assert seed_orders(100) == 0


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(db: None) -> None:
    err = io.StringIO()
    call_command("seed_demo", rows=300, batch_size=100, stdout=io.StringIO(), stderr=err)
    assert Order.objects.count() == 300
    assert err.getvalue() == ""


def test_bad_arguments_are_refused(db: None) -> None:
    with pytest.raises(CommandError):
        seed(-1)
    with pytest.raises(ValueError, match="batch"):
        seed_orders(10, batch=0)


def order_indexes() -> list[tuple[str, str]]:
    """The orders table's indexes as the database itself describes them."""
    if connection.vendor == "sqlite":
        query = "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE tbl_name = %s"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
    with connection.cursor() as cursor:
        cursor.execute(query, [Order._meta.db_table])
        return sorted(cursor.fetchall())


def sqlite_settings() -> dict[str, Any]:
    """The connection's settings a seed changes while it runs, as SQLite reports them."""
    names = ["foreign_keys", "ignore_check_constraints", "cache_size", "mmap_size", "synchronous"]
    with connection.cursor() as cursor:
        return {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


def test_a_first_seed_leaves_the_schema_and_indexes_as_migrations_made_them(
    transactional_db: None,
) -> None:
    # Outside a test transaction, as a real seed runs: SQLite's connection
    # settings (foreign keys) can only change between transactions.
    before = order_indexes()
    assert len(before) >= 5
    settings = sqlite_settings() if connection.vendor == "sqlite" else {}
    seed_orders(1_000, batch=300)
    assert order_indexes() == before
    assert not list(Path(str(connection.settings_dict["NAME"])).parent.glob("*.seed-indexes.json"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Order._meta.db_table} WHERE status = %s", ["paid"])
        assert cursor.fetchone()[0] == Order.objects.filter(status="paid").count() > 0
        if connection.vendor == "sqlite":  # the seed's shortcuts end with the seed
            assert sqlite_settings() == settings
            assert settings["foreign_keys"] == 1
            assert settings["ignore_check_constraints"] == 0
            cursor.execute("SELECT name FROM sqlite_temp_master")
            assert cursor.fetchall() == []  # the seed's temp tables are gone
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchall() == [("ok",)]
            cursor.execute("PRAGMA foreign_key_check")
            assert cursor.fetchall() == []


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="SQLite's first-seed index path")
def test_a_seed_killed_outright_has_its_indexes_rebuilt_by_the_next(tmp_path: Path) -> None:
    env = dict(os.environ, STREAMBOARD_VAR_DIR=str(tmp_path))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    database = tmp_path / "streamboard.sqlite3"

    def indexes() -> list[tuple[str, str]]:
        with closing(sqlite3.connect(database)) as db:
            return sorted(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))

    migrated = indexes()
    pending = tmp_path / "streamboard.sqlite3.seed-indexes.json"
    seeding = subprocess.Popen(
        [*manage, "seed_demo", "--rows", "2000000"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: indexes() != migrated, timeout=60, what="indexes set aside")
    finally:
        seeding.send_signal(signal.SIGKILL)
        seeding.wait(timeout=30)
    assert pending.exists()
    result = subprocess.run(
        [*manage, "seed_demo", "--rows", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "nothing to do" in result.stdout
    assert indexes() == migrated
    assert not pending.exists()


def test_customers_with_gaps_in_their_ids_are_all_drawn_and_only_they(db: None) -> None:
    ensure_customers()
    gone = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[10:990])
    Customer.objects.filter(pk__in=gone).delete()
    seed_orders(2_000, batch=700)
    used = set(Order.objects.values_list("customer_id", flat=True))
    assert used == set(Customer.objects.values_list("pk", flat=True))


def test_other_backends_rows_built_in_python_are_valid_too(db: None) -> None:
    # The fallback for backends that generate no rows themselves, tried here.
    with python_batches(connection, ensure_customers(), seed=3) as write, transaction.atomic():
        write(0, BLOCK + 150, 0)
    orders = list(Order.objects.order_by("pk"))
    assert [o.reference for o in orders] == [f"ORD-{n:08d}" for n in range(1, BLOCK + 151)]
    for order in orders[::500]:
        order.full_clean(exclude=["customer"])
        assert order.uuid.version == 7
        assert order.updated_at >= order.created_at
