"""The bench's raw floor (``bench/raw_orders.py``) writes exactly the export's bytes.

``make bench`` compares Streamboard's NDJSON export with this floor; the
comparison is only fair if both produce the same lines, awkward values
included (decimals, microseconds, unicode, JSON of every shape).
"""

from __future__ import annotations

import pytest
from django.db import connection

from bench import raw_orders
from dashboard.models import Order
from streams.exports.allow_list import get_exportable
from streams.exports.producer import iter_export
from tests.support.demo_orders import AWKWARD, make_customer, make_order


@pytest.mark.django_db(transaction=True)
def test_raw_floor_writes_the_same_bytes_as_the_streamed_export() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the raw floor reads the SQLite file")
    customer = make_customer()
    for n, overrides in enumerate(AWKWARD, start=1):
        make_order(customer, n, **overrides)
    for n in range(len(AWKWARD) + 1, raw_orders.CHUNK + 10):
        make_order(customer, n)
    last = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    assert last is not None
    exportable = get_exportable("dashboard.order")
    expected = b"".join(
        chunk.data
        for chunk in iter_export(Order.objects.filter(id__lte=last), exportable.fields, "ndjson")
    )

    written: list[bytes] = []
    stats = raw_orders.produce(str(connection.settings_dict["NAME"]), last, written.append)

    assert stats["rows"] == Order.objects.count()
    assert b"".join(written) == expected
