"""The export producer: every field type round-trips, chunks, resumption, failures."""

from __future__ import annotations

import csv
import datetime
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dashboard.models import Order
from streams.exports.allow_list import get_exportable
from streams.exports.formats import ExportFormat
from streams.exports.producer import (
    AFTER_PLACEHOLDER,
    ExportChunk,
    ExportEncodingError,
    aiter_export,
    count_rows,
    iter_export,
)
from tests.support.demo_orders import make_awkward_orders, make_customer, make_order, make_orders


@pytest.fixture
def order_fields() -> tuple[str, ...]:
    return get_exportable("dashboard.order").fields


def export_bytes(fmt: ExportFormat, fields: tuple[str, ...], **kwargs: Any) -> bytes:
    return b"".join(c.data for c in iter_export(Order.objects.all(), fields, fmt, **kwargs))


def collect(queryset: Any, fields: tuple[str, ...], fmt: ExportFormat) -> list[ExportChunk]:
    return list(iter_export(queryset, fields, fmt, chunk_size=4))


def assert_matches_row(exported: dict[str, Any], order: Order, *, csv_cells: bool) -> None:
    """Compare one exported record with the database row, value by value."""
    assert int(exported["id"]) == order.pk
    assert uuid.UUID(exported["uuid"]) == order.uuid
    assert str(uuid.UUID(exported["uuid"])) == exported["uuid"]
    assert exported["reference"] == order.reference
    assert int(exported["customer"]) == order.customer_id
    assert exported["status"] == order.status
    assert int(exported["quantity"]) == order.quantity
    # Decimals exactly, as strings: never a float.
    assert exported["amount"] == str(order.amount)
    assert Decimal(exported["amount"]) == order.amount
    assert exported["note"] == order.note
    assert datetime.date.fromisoformat(exported["placed_on"]) == order.placed_on
    assert datetime.datetime.fromisoformat(exported["created_at"]) == order.created_at
    assert datetime.datetime.fromisoformat(exported["updated_at"]) == order.updated_at
    if csv_cells:
        assert exported["is_gift"] == ("true" if order.is_gift else "false")
        assert json.loads(exported["metadata"]) == order.metadata
    else:
        assert exported["is_gift"] is order.is_gift
        assert exported["metadata"] == order.metadata


def test_every_field_type_round_trips_through_ndjson(db: None, order_fields) -> None:
    orders = make_awkward_orders()
    data = export_bytes("ndjson", order_fields)
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert len(lines) == len(orders)
    by_pk = {order.pk: order for order in Order.objects.all()}
    for line in lines:
        record = json.loads(line)  # each line parses on its own
        assert list(record) == list(order_fields)
        assert_matches_row(record, by_pk[record["id"]], csv_cells=False)


def test_every_field_type_round_trips_through_csv(db: None, order_fields) -> None:
    orders = make_awkward_orders()
    data = export_bytes("csv", order_fields)
    reader = csv.DictReader(io.StringIO(data.decode(), newline=""))
    assert tuple(reader.fieldnames or ()) == order_fields
    records = list(reader)
    assert len(records) == len(orders)
    by_pk = {order.pk: order for order in Order.objects.all()}
    for record in records:
        assert_matches_row(record, by_pk[int(record["id"])], csv_cells=True)


def test_rows_come_in_primary_key_order_whatever_the_queryset_ordering(
    db: None, order_fields
) -> None:
    make_orders(50)
    queryset = Order.objects.order_by("-amount")
    ids = [
        orjson.loads(line)["id"]
        for chunk in iter_export(queryset, ("id",), "ndjson", chunk_size=7)
        for line in chunk.data.splitlines()
    ]
    assert ids == sorted(Order.objects.values_list("pk", flat=True))


def test_chunks_hold_chunk_size_rows_and_report_the_last_pk(db: None) -> None:
    orders = make_orders(25)
    chunks = list(iter_export(Order.objects.all(), ("id", "amount"), "ndjson", chunk_size=10))
    assert [c.rows for c in chunks] == [10, 10, 5]
    assert [c.last_pk for c in chunks] == [orders[9].pk, orders[19].pk, orders[24].pk]
    assert [c.data.count(b"\n") for c in chunks] == [10, 10, 5]


def test_an_exact_multiple_of_the_chunk_size_ends_cleanly(db: None) -> None:
    make_orders(20)
    chunks = list(iter_export(Order.objects.all(), ("id",), "ndjson", chunk_size=10))
    assert [c.rows for c in chunks] == [10, 10]


def test_after_resumes_exactly_after_a_primary_key(db: None, order_fields) -> None:
    orders = make_orders(30)
    full = export_bytes("ndjson", order_fields, chunk_size=8)
    cut = orders[11].pk
    head = b"".join(line + b"\n" for line in full.splitlines() if orjson.loads(line)["id"] <= cut)
    tail = export_bytes("ndjson", order_fields, after=cut, chunk_size=8)
    assert head + tail == full
    assert count_rows(Order.objects.all(), after=cut) == 18


def test_csv_has_one_header_row_at_the_start_only(db: None) -> None:
    make_orders(25)
    data = export_bytes("csv", ("id", "note"), chunk_size=10)
    lines = data.split(b"\r\n")
    assert lines[0] == b"id,note"
    assert data.count(b"id,note") == 1
    assert len(lines) == 1 + 25 + 1  # header, rows, the empty string after the last \r\n


def test_csv_resumed_with_after_appends_without_a_second_header(db: None) -> None:
    orders = make_orders(12)
    full = export_bytes("csv", ("id", "note"), chunk_size=5)
    cut = orders[6].pk
    tail = export_bytes("csv", ("id", "note"), after=cut, chunk_size=5)
    assert not tail.startswith(b"id,")
    assert full.endswith(tail)
    assert full[: -len(tail)].endswith(f"{cut},order 7\r\n".encode())


def test_an_empty_export_is_empty_in_ndjson_and_a_header_in_csv(db: None) -> None:
    assert export_bytes("ndjson", ("id",)) == b""
    assert export_bytes("csv", ("id", "amount")) == b"id,amount\r\n"


def test_a_foreign_key_exports_its_primary_key_under_the_field_name(db: None) -> None:
    customer = make_customer()
    make_order(customer)
    record = orjson.loads(export_bytes("ndjson", ("customer",)))
    assert record == {"customer": customer.pk}


def test_only_the_requested_fields_in_the_requested_order(db: None) -> None:
    make_orders(2)
    first = export_bytes("ndjson", ("amount", "id")).splitlines()[0]
    assert list(orjson.loads(first)) == ["amount", "id"]


def test_secret_or_non_column_fields_are_refused_by_the_producer(db: None) -> None:
    with pytest.raises(ImproperlyConfigured, match="secret"):
        list(iter_export(User.objects.all(), ("username", "password"), "ndjson"))
    with pytest.raises(ImproperlyConfigured, match="not a concrete column"):
        list(iter_export(User.objects.all(), ("groups",), "ndjson"))


def test_a_row_that_cannot_be_encoded_raises_after_the_good_chunks(db: None) -> None:
    customer = make_customer()
    for n in range(1, 6):
        make_order(customer, n)
    make_order(customer, 6, metadata={"too_big": 2**70})  # beyond 64-bit: orjson refuses
    chunks = iter_export(Order.objects.all(), ("id", "metadata"), "ndjson", chunk_size=5)
    first = next(chunks)
    assert first.rows == 5
    with pytest.raises(ExportEncodingError, match=r"dashboard.order pk=\d+ cannot be encoded"):
        next(chunks)


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_the_async_producer_gives_the_same_chunks_as_the_sync_one(
    transactional_db: None, fmt: ExportFormat, order_fields
) -> None:
    await sync_to_async(make_awkward_orders)()
    await sync_to_async(make_orders)(23)
    queryset = Order.objects.all()
    async_chunks = [c async for c in aiter_export(queryset, order_fields, fmt, chunk_size=4)]
    sync_chunks = await sync_to_async(collect)(queryset, order_fields, fmt)
    assert async_chunks == sync_chunks
    assert sum(c.rows for c in async_chunks) == 29


async def test_the_async_producer_raises_a_bad_row_after_the_good_chunks(
    transactional_db: None,
) -> None:
    def make() -> None:
        customer = make_customer()
        for n in range(1, 6):
            make_order(customer, n)
        make_order(customer, 6, metadata={"too_big": 2**70})

    await sync_to_async(make)()
    chunks = aiter_export(Order.objects.all(), ("id", "metadata"), "ndjson", chunk_size=5)
    first = await anext(chunks)
    assert first.rows == 5
    with pytest.raises(ExportEncodingError, match=r"dashboard.order pk=\d+ cannot be encoded"):
        await anext(chunks)


async def test_closing_the_async_producer_early_leaves_the_next_export_whole(
    transactional_db: None,
) -> None:
    await sync_to_async(make_orders)(50)
    queryset = Order.objects.all()
    chunks = aiter_export(queryset, ("id",), "ndjson", chunk_size=10)
    first = await anext(chunks)
    assert first.rows == 10
    await chunks.aclose()  # the chunk being read ahead is dropped
    again = [c async for c in aiter_export(queryset, ("id",), "ndjson", chunk_size=10)]
    assert [c.rows for c in again] == [10, 10, 10, 10, 10]
    assert again[0] == first


def test_a_filter_that_can_match_nothing_exports_nothing(db: None) -> None:
    make_orders(3)
    empty = Order.objects.filter(pk__in=[])
    assert b"".join(c.data for c in iter_export(empty, ("id",), "ndjson")) == b""
    assert b"".join(c.data for c in iter_export(empty, ("id", "status"), "csv")) == b"id,status\r\n"


def test_chunks_stay_exact_when_a_filter_value_equals_the_after_placeholder(db: None) -> None:
    orders = make_orders(7)
    queryset = Order.objects.filter(pk__gt=AFTER_PLACEHOLDER, quantity__gt=AFTER_PLACEHOLDER)
    chunks = list(iter_export(queryset, ("id",), "ndjson", chunk_size=3))
    assert [c.rows for c in chunks] == [3, 3, 1]
    ids = [orjson.loads(line)["id"] for c in chunks for line in c.data.splitlines()]
    assert ids == [o.pk for o in orders]


async def test_the_async_producer_takes_its_chunk_size_from_the_setting(
    transactional_db: None,
) -> None:
    await sync_to_async(make_orders)(7)
    with override_settings(STREAMBOARD_EXPORT_CHUNK_SIZE=3):
        chunks = [c async for c in aiter_export(Order.objects.all(), ("id",), "ndjson")]
    assert [c.rows for c in chunks] == [3, 3, 1]


def test_the_sync_producer_takes_its_chunk_size_from_the_setting(db: None) -> None:
    make_orders(5)
    with override_settings(STREAMBOARD_EXPORT_CHUNK_SIZE=2):
        assert [c.rows for c in iter_export(Order.objects.all(), ("id",), "csv")] == [2, 2, 1]


@pytest.mark.parametrize("chunks_per_hop", [1, 2, 3, 8])
async def test_the_async_producer_gives_the_same_chunks_whatever_the_chunks_per_hop(
    transactional_db: None, chunks_per_hop: int, order_fields
) -> None:
    await sync_to_async(make_orders)(23)
    queryset = Order.objects.all()
    chunks = [
        c
        async for c in aiter_export(
            queryset, order_fields, "csv", chunk_size=4, chunks_per_hop=chunks_per_hop
        )
    ]
    assert chunks == await sync_to_async(collect)(queryset, order_fields, "csv")
    assert [c.rows for c in chunks] == [4, 4, 4, 4, 4, 3]


async def test_a_bad_row_in_a_later_chunk_of_a_hop_comes_after_the_good_chunks(
    transactional_db: None,
) -> None:
    def make() -> None:
        customer = make_customer()
        for n in range(1, 11):
            make_order(customer, n)
        make_order(customer, 11, metadata={"too_big": 2**70})

    await sync_to_async(make)()
    chunks = aiter_export(
        Order.objects.all(), ("id", "metadata"), "ndjson", chunk_size=5, chunks_per_hop=4
    )
    assert [(await anext(chunks)).rows, (await anext(chunks)).rows] == [5, 5]
    with pytest.raises(ExportEncodingError, match=r"dashboard.order pk=\d+ cannot be encoded"):
        await anext(chunks)
