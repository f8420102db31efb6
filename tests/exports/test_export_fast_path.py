"""The export fast path (``exports.fastpath``) writes exactly the bytes of Django's converters.

The reference is the plain way: ``values_list`` with every Django converter,
then the same encoders. Checked on awkward and random rows through the ORM,
on values Django would never write but a database may hold (SQLite, raw SQL),
and on the decimal and JSON converters alone over many generated values. Runs
on SQLite, and on PostgreSQL under ``scripts/with_services.py``.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import django.db.backends.sqlite3.base  # noqa: F401 - loads operations without an import cycle
import orjson
import pytest
from django.db import connection, models
from django.db.backends.sqlite3.operations import DatabaseOperations as SQLiteOperations
from django.db.models.expressions import Col
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.models import Customer, Order
from streams.exports import csv_rows, fastpath, ndjson
from streams.exports.allow_list import get_exportable
from streams.exports.formats import ExportFormat
from streams.exports.producer import ENCODE_BATCH, iter_export
from tests.support.demo_orders import make_awkward_orders, make_customer, make_order, make_orders

pytestmark = pytest.mark.services

UTC = datetime.UTC
FORMATS: tuple[ExportFormat, ...] = ("ndjson", "csv")
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="raw SQLite storage classes and text formats"
)


def order_fields() -> tuple[str, ...]:
    return get_exportable("dashboard.order").fields


def django_export(fields: Sequence[str], fmt: ExportFormat) -> bytes:
    """The reference: Django's converters on every value, then the same encoders."""
    rows = list(Order.objects.order_by("pk").values_list(*fields))
    if fmt == "ndjson":
        return ndjson.encode_rows(fields, rows)
    cells = [
        csv_rows.json_cell
        if isinstance(Order._meta.get_field(name), models.JSONField)
        else csv_rows.plain_cell
        for name in fields
    ]
    return csv_rows.encode_header(fields) + csv_rows.encode_rows(cells, rows)


def fast_export(fields: Sequence[str], fmt: ExportFormat, chunk_size: int = 3) -> bytes:
    return b"".join(
        c.data for c in iter_export(Order.objects.all(), fields, fmt, chunk_size=chunk_size)
    )


def outcome(produce: Callable[[], bytes]) -> bytes | str:
    """The bytes, or "fails" when the export raises (both paths must then fail)."""
    try:
        return produce()
    except Exception:
        return "fails"


def assert_same_bytes(fields: Sequence[str] | None = None) -> None:
    names = tuple(fields or order_fields())
    for fmt in FORMATS:
        expected = outcome(lambda: django_export(names, fmt))  # noqa: B023 - called at once
        got = outcome(lambda: fast_export(names, fmt))  # noqa: B023 - called at once
        assert got == expected, fmt


def test_the_fast_path_is_in_use_for_every_converted_order_column(db: None) -> None:
    compiler = Order.objects.all().query.get_compiler(using="default")
    plan = fastpath.plan_columns(compiler, Order, ("pk", *order_fields()))
    converted = {
        name: convert.__qualname__
        for name, convert in zip(("pk", *order_fields()), plan.converters, strict=True)
        if convert is not None
    }
    expected = {"metadata"}
    if connection.vendor == "sqlite":
        expected |= {"uuid", "amount", "placed_on", "is_gift", "created_at", "updated_at"}
    assert set(converted) == expected
    assert not [qualname for qualname in converted.values() if qualname.startswith("_django")]


def test_awkward_orders_give_the_same_bytes_as_djangos_converters(db: None) -> None:
    make_awkward_orders()
    customer = Customer.objects.first()
    assert customer is not None
    changes: list[dict[str, Any]] = [
        {"amount": Decimal("-0.01"), "metadata": {"z": 1, "a": [1.5e300, -0.0, 1e-7]}},
        {"amount": Decimal("100.10"), "metadata": {"big": 2**64 - 1, "neg": -(2**63)}},
        {"amount": Decimal("-9999999999.99"), "metadata": [None]},
        {"note": 'line\nbreak "quoted" \\ back\u2028slash', "metadata": {"é": {"ü": ["東"]}}},
        {"created_at": datetime.datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=UTC)},
        {"created_at": datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)},
        {
            "created_at": datetime.datetime(
                2024, 6, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
            )
        },
        {"updated_at": datetime.datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)},
        {"is_gift": True, "metadata": {"f": 0.1 + 0.2, "i": 10**18, "s": "\x01\x1f"}},
        {"uuid": uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff")},
    ]
    for n, overrides in enumerate(changes, start=200):
        make_order(customer, n, **overrides)
    assert Order.objects.count() > 10
    assert_same_bytes()
    assert_same_bytes(("metadata", "amount", "id"))


def test_json_beyond_64_bit_integers_fails_on_both_paths(db: None) -> None:
    make_order(make_customer(), 1, metadata={"n": 2**64})
    for fmt in FORMATS:
        assert outcome(lambda: django_export(("id", "metadata"), fmt)) == "fails"  # noqa: B023
        assert outcome(lambda: fast_export(("id", "metadata"), fmt)) == "fails"  # noqa: B023


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
plain_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
order_values = st.fixed_dictionaries(
    {
        "uuid": st.uuids(),
        "reference": st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20
        ),
        "status": st.sampled_from(Order.Status.values),
        "quantity": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "amount": st.decimals(
            min_value=Decimal("-9999999999.99"),
            max_value=Decimal("9999999999.99"),
            places=2,
            allow_nan=False,
            allow_infinity=False,
        ),
        "note": plain_text,
        "placed_on": st.dates(min_value=datetime.date(1000, 1, 1)),
        "is_gift": st.booleans(),
        # Top-level None would be SQL NULL (the column is NOT NULL); \u0000 PostgreSQL refuses.
        "metadata": json_values.filter(lambda v: v is not None and "\\u0000" not in json.dumps(v)),
        "created_at": st.datetimes(
            min_value=datetime.datetime(1000, 1, 2),
            max_value=datetime.datetime(9999, 12, 30),
            timezones=st.sampled_from([UTC, datetime.timezone(datetime.timedelta(hours=5.5))]),
        ),
    }
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(order_values, min_size=1, max_size=4, unique_by=lambda v: v["uuid"]))
def test_random_orders_give_the_same_bytes_as_djangos_converters(
    db: None, rows: list[dict[str, Any]]
) -> None:
    Order.objects.all().delete()
    customer = Customer.objects.first() or make_customer()
    Order.objects.bulk_create(Order(customer=customer, **values) for values in rows)
    assert_same_bytes()


def set_raw(pk: int, column: str, value: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE dashboard_order SET "{column}" = %s WHERE id = %s', [value, pk])


RAW_SQLITE_VALUES: list[tuple[str, Any]] = [
    ("amount", 1.005),
    ("amount", 2.675),
    ("amount", 0.1 + 0.2),
    ("amount", -0.0),
    ("amount", 7),
    ("amount", 9999999999),
    ("amount", 10**10),
    ("amount", 1e300),
    ("amount", 123456789.123456),
    ("amount", 1e-7),
    ("amount", "12.5"),
    ("amount", "not a number"),
    ("created_at", "2024-01-01T10:00:00"),
    ("created_at", "2024-01-01 10:00:00+02:00"),
    ("created_at", "2024-01-01 10:00:00.5"),
    ("created_at", "2024-01-01 10:00:00.000000"),
    ("created_at", "2024-01-01 10:00"),
    ("created_at", "2024-01-01"),
    ("created_at", "20240101T100000"),
    ("created_at", "2024-1-1 1:02:03"),
    ("created_at", "garbage"),
    ("created_at", 1700000000),
    ("created_at", "2024-02-30 10:00:00"),
    ("placed_on", "2024-1-1"),
    ("placed_on", "20240101"),
    ("placed_on", "nope"),
    ("placed_on", "2024-02-30"),
    ("uuid", "0123456789ABCDEF0123456789ABCDEF"),
    ("uuid", "01234567-89ab-cdef-0123-456789abcdef"),
    ("uuid", "{0123456789abcdef0123456789abcdef}"),
    ("uuid", "0123456789abcdefg123456789abcdef"),
    ("uuid", "not-a-uuid"),
    ("is_gift", 2),
    ("is_gift", "yes"),
    ("metadata", '{"a": 123456789012345678901234567890}'),
    ("metadata", '{"a": 1234567890123456789}'),
    ("metadata", "[1e400, -1e400]"),
    ("metadata", '{"b": 1, "a": 2, "b": 3}'),
    ("metadata", '"\\ud800"'),
    ("metadata", '"\\ud83d\\ude00"'),
    ("metadata", '{"x": 1.0, "y": 1E2, "z": -0}'),
]


@sqlite_only
@pytest.mark.parametrize(("column", "value"), RAW_SQLITE_VALUES)
def test_values_django_never_writes_give_the_same_outcome_on_sqlite(
    db: None, column: str, value: Any
) -> None:
    customer = make_customer()
    order = make_order(customer, 1)
    make_order(customer, 2)
    set_raw(order.pk, column, value)
    assert_same_bytes()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="jsonb text from PostgreSQL")
@pytest.mark.parametrize(
    "text",
    [
        '{"a": 123456789012345678901234567890}',
        '{"a": 1e400}',
        '{"b": 1, "a": 2, "b": 3}',
        '{"x": 1.0, "y": 1E2, "z": -0, "w": 0.00000001}',
        '{"s": "\\ud83d\\ude00 \\u00e9"}',
    ],
)
def test_jsonb_text_gives_the_same_bytes_on_postgresql(db: None, text: str) -> None:
    order = make_order(make_customer(), 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dashboard_order SET metadata = %s::jsonb WHERE id = %s", [text, order.pk]
        )
    assert_same_bytes()


# The converters alone, over many values (no database).


def sqlite_decimal_pair(max_digits: int, places: int) -> tuple[fastpath.Convert, fastpath.Convert]:
    field = models.DecimalField(max_digits=max_digits, decimal_places=places)
    col = Col("t", field)
    converter = SQLiteOperations(connection=None).get_decimalfield_converter(col)  # type: ignore[arg-type]

    def slow(value: Any) -> Any:
        return converter(value, col, connection)

    return fastpath.sqlite_decimal_converter(places, max_digits, slow), slow


def as_text(convert: fastpath.Convert, value: Any) -> str:
    try:
        result = convert(value)
    except Exception as error:
        return f"fails: {type(error).__name__}"
    return "None" if result is None else str(result)


@settings(max_examples=3000, deadline=None)
@given(
    shape=st.sampled_from([(12, 2), (5, 0), (20, 6), (3, 3), (17, 4), (15, 1)]),
    value=st.one_of(
        st.floats(),
        st.integers(min_value=-(10**22), max_value=10**22),
        st.decimals(allow_nan=False, allow_infinity=False, places=6).map(float),
        st.decimals(min_value=-(10**12), max_value=10**12, places=2).map(float),
    ),
)
def test_sqlite_decimal_converter_matches_djangos(shape: tuple[int, int], value: Any) -> None:
    fast, slow = sqlite_decimal_pair(*shape)
    assert as_text(fast, value) == as_text(slow, value)


def test_sqlite_decimal_converter_is_fast_for_what_django_writes() -> None:
    fast, _slow = sqlite_decimal_pair(12, 2)
    for text in ("0.10", "-12.30", "9999999999.99", "0.00", "19.99", "-0.01"):
        stored = float(text)
        assert fast(stored) == text
        assert type(fast(stored)) is str
    assert fast(5) == "5.00"
    # The nearest double to 2.675 is below it; Django's 15-digit rounding makes it 2.68.
    assert str(fast(2.675)) == "2.68"


def json_slow(value: Any) -> Any:
    return models.JSONField().from_db_value(value, Col("t", models.JSONField()), connection)


@settings(max_examples=2000, deadline=None)
@given(
    value=json_values | st.integers(min_value=-(2**70), max_value=2**70),
    style=st.sampled_from(["django", "compact", "unicode"]),
)
def test_json_converter_gives_the_same_bytes_as_json_loads(value: Any, style: str) -> None:
    if style == "django":
        text = json.dumps(value)
    elif style == "compact":
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=False, indent=1)
    fast = fastpath.json_converter(json_slow)

    def encoded(convert: fastpath.Convert) -> bytes | str:
        try:
            return orjson.dumps(convert(text), default=ndjson.default)
        except Exception as error:
            return f"fails: {type(error).__name__}"

    assert encoded(fast) == encoded(json_slow)


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", "-Infinity", "1e400", "not json", '"\\ud800"', "[" * 3000 + "]" * 3000],
)
def test_json_converter_falls_back_for_what_orjson_refuses(text: str) -> None:
    fast = fastpath.json_converter(json_slow)
    assert repr(fast(text)) == repr(json_slow(text))


# The common cases (per value and per batch, written out) against their converters.

raw_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=40),
    st.datetimes().map(str),
    st.datetimes(timezones=st.just(UTC)).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: u.hex.upper()),
    st.uuids().map(str),
    json_values.map(json.dumps),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(float),
    st.sampled_from(["2024-01-01 10:00:00Z", "2024-01-01T10", "2024-01-01+00:00", "1" * 19]),
)


def column_plans(
    naive_utc: bool = False,
) -> list[tuple[str, fastpath.Convert, str | None, str | None]]:
    """Each converted order column with a common case: name, converter, per value, per batch."""
    compiler = Order.objects.all().query.get_compiler(using="default")
    names = ("pk", *order_fields())
    plan = fastpath.plan_columns(compiler, Order, names, naive_utc=naive_utc)
    assert plan.naive_utc == (naive_utc and connection.vendor == "sqlite")
    return [
        (name, convert, value, batch)
        for name, convert, value, batch in zip(
            names, plan.converters, plan.inline, plan.batch, strict=True
        )
        if convert is not None and (value is not None or batch is not None)
    ]


def test_every_converted_column_has_a_common_case(db: None) -> None:
    expected = {"metadata"}
    if connection.vendor == "sqlite":
        expected |= {"uuid", "amount", "placed_on", "is_gift", "created_at", "updated_at"}
    assert {name for name, *_ in column_plans()} == expected


@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(raw_values, min_size=1, max_size=4), naive_utc=st.booleans())
def test_common_cases_convert_as_their_converter_or_raise(
    db: None, values: list[Any], naive_utc: bool
) -> None:
    """Per value or per batch, each common case gives the converter's bytes, or raises.

    With ``naive_utc`` the rows are NDJSON lines, the optimistic ones written
    with ``OPT_NAIVE_UTC`` as the export writes them (so a naive datetime must
    give the bytes of the converter's aware one); without, tuples of values.
    """
    rows = [(n, value) for n, value in enumerate(values)]
    for name, convert, value, batch in column_plans(naive_utc):
        if naive_utc:
            fast_option = ndjson.OPTIONS | orjson.OPT_NAIVE_UTC
            optimistic = fastpath.compile_rows(
                [None, convert], ("v",), [None, value], [None, batch], ndjson_option=fast_option
            )
            safe = fastpath.compile_rows([None, convert], ("v",), ndjson_option=ndjson.OPTIONS)
        else:
            optimistic = fastpath.compile_rows([None, convert], None, [None, value], [None, batch])
            safe = fastpath.compile_rows([None, convert], None)

        def described(rows_of: fastpath.RowsFunction) -> list[Any] | str:
            try:
                got = rows_of(rows)
            except (TypeError, ValueError):
                return "raises"  # the export then converts the chunk with ``safe``
            except Exception as error:
                return f"fails: {type(error).__name__}"  # the export fails: so must ``safe``
            if naive_utc:
                return got
            return [(type(v).__name__, repr(v)) for (v,) in got]

        fast = described(optimistic)
        if fast != "raises":
            assert fast == described(safe), name


@sqlite_only
def test_a_batch_with_one_value_off_the_common_case_raises(db: None) -> None:
    """One value off the path sends the whole batch the safe way, wherever it is."""
    plans = {name: (convert, value, batch) for name, convert, value, batch in column_plans()}
    good = {"uuid": uuid.uuid4().hex, "amount": 12.5, "metadata": '{"n": 1}'}
    bad = {
        "uuid": uuid.uuid4().hex.upper(),
        "amount": 0.125,
        "metadata": '{"n": 1' + "0" * 19 + "}",
    }
    for name, off in bad.items():
        convert, value, batch = plans[name]
        assert batch is not None, name
        optimistic = fastpath.compile_rows([None, convert], None, [None, value], [None, batch])
        assert len(optimistic([(0, good[name]), (1, good[name])])) == 2
        for where in range(3):
            column = [good[name]] * 3
            column[where] = off
            with pytest.raises(ValueError, match=r"fast path|lowercase hex|decimal"):
                optimistic(list(enumerate(column)))


def test_a_chunk_of_many_encoding_batches_gives_the_same_bytes(db: None) -> None:
    orders = make_orders(2 * ENCODE_BATCH + 17)
    make_awkward_orders()
    if connection.vendor == "sqlite":
        # One value off the fast path, in the second batch only.
        set_raw(orders[ENCODE_BATCH + 3].pk, "created_at", "2024-01-01")
    for fmt in FORMATS:
        expected = django_export(order_fields(), fmt)
        got = b"".join(
            c.data for c in iter_export(Order.objects.all(), order_fields(), fmt, chunk_size=2000)
        )
        assert got == expected, fmt
