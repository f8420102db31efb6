"""Raw column values to export values, without Django's per-value converters.

Why: an export turns database text into Python objects (``Decimal``,
``UUID``, aware ``datetime``, a parsed JSON dict) only for orjson to turn them
back into text. Profiling ``iter_export`` showed two thirds of its time in
``SQLCompiler.apply_converters``. This module replaces, column by column,
Django's converters with cheaper ones that give values the encoders turn into
**the same bytes** (``streams/ndjson.py`` and ``streams/csv_rows.py``): a
decimal may come out as its exact string, a UUID as its canonical text.

How it stays exact: each fast converter handles only the shapes of value it
can prove equal to Django's result (the common ones, as Django itself writes
them) and hands anything else to Django's own converters for that column. A
column is only given a fast converter when its converter list is exactly the
one this module knows (a known backend, the exact built-in field class, no
custom ``from_db_value`` or JSON decoder); otherwise Django's converters run
unchanged. ``tests/exports/test_export_fast_path.py`` checks fast == Django
bytes on awkward and random values, on SQLite and on PostgreSQL.

The common case goes faster still (``ColumnPlan.inline`` and ``batch``): a
batch of rows is first converted by expressions that hold only for what
Django itself writes and raise on anything else (then the batch is
converted again by the fast converters). A JSON, UUID or decimal column is
converted for the whole batch at once with C calls (``_dashed_uuids``,
``_decimals_as_text``, one scan for long digit runs), and for NDJSON the
UTC timestamps stay naive and are written with orjson's ``OPT_NAIVE_UTC``,
which gives the bytes of the aware value without orjson's slow path for an
aware ``datetime``. With the rows written as lines as they are converted,
the demo orders take about 2.1 us a row, as the raw sqlite3 + orjson floor
does (``bench/raw_orders.py``, which slices strings and proves nothing).

What is replaced:

* SQLite: ``DecimalField`` (stored as REAL/INTEGER), ``DateTimeField``,
  ``DateField``, ``UUIDField`` (32 hex digits), ``BooleanField`` (0/1),
  ``JSONField``.
* PostgreSQL: ``JSONField`` (Django reads jsonb as text and ``json.loads`` it);
  psycopg already returns the other types as Python objects, with no Django
  converter in between.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson
from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Col
from django.db.models.functions import Cast
from django.db.models.sql.compiler import SQLCompiler
from django.utils import dateparse

from streams.exports import ndjson

Convert = Callable[[Any], Any]
# What SQLCompiler.get_converters() returns: position -> (converters, expression).
DjangoConverters = dict[int, tuple[list[Callable[..., Any]], Any]]

_HEX32 = re.compile(r"[0-9a-f]{32}").fullmatch
# orjson.loads reads integers beyond 64 bits as floats where json.loads keeps
# them exact (and the encoder then refuses them): any run of 19+ digits goes
# the slow way. 18 digits always fit in a signed 64-bit integer.
_LONG_DIGITS = re.compile(r"[0-9][0-9]{18}").search  # the fastest spelling measured
_BOOLS: dict[Any, Any] = {0: False, 1: True}
# Every digit byte to "d", every other byte to " ": a run of 19 digits becomes
# a run of 19 "d"s, found with a substring search.
_DIGITS_AS_D = bytes(0x64 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_19_DIGITS = b"d" * 19

# Decimal's str() switches to exponent notation below 1E-6: fast path up to 6 places.
_MAX_FAST_DECIMAL_PLACES = 6
# SQLite keeps 15 significant digits (Django rounds floats to 15 digits).
_SQLITE_DIGITS = 15


def _long_digit_run(text: str) -> bool:
    """Whether ``text`` holds 19 or more digits in a row (C calls only)."""
    return _19_DIGITS in text.encode().translate(_DIGITS_AS_D)


def _off_path() -> Any:
    """Raised from a batch expression: the batch holds a value off the common path."""
    raise ValueError("a value off the fast path")


_LOWER_HEX = b"0123456789abcdef"
# Where each of a UUID's 32 hex digits goes in its 36-character dashed form.
_DASHED_OFFSETS = tuple(k + (k >= 8) + (k >= 12) + (k >= 16) + (k >= 20) for k in range(32))
_36_CHARACTERS = re.compile(".{36}", re.DOTALL).findall


def _dashed_uuids(values: list[Any]) -> list[str]:
    """Each value, 32 lowercase hex digits, in canonical dashed form: ``ValueError`` else.

    What Django's converter gives (``uuid.UUID(value)``, written by the
    encoders as ``str()``), for a whole batch in about 125 ns a value instead
    of 470 for a regular expression and a join per value: every byte is
    checked at once (``translate``), and the digits are copied into place by
    32 strided slice assignments, one per digit position.
    """
    joined = "".join(values)  # TypeError unless every value is text
    count = len(values)
    if len(joined) != 32 * count or not joined.isascii() or set(map(len, values)) != {32}:
        raise ValueError("not 32 characters each")
    digits = joined.encode()
    if digits.translate(None, _LOWER_HEX):
        raise ValueError("not lowercase hex digits")
    dashed = bytearray(b"-" * (36 * count))
    for source, target in enumerate(_DASHED_OFFSETS):
        dashed[target::36] = digits[source::32]
    return _36_CHARACTERS(dashed.decode("ascii"))


def _decimals_as_text(values: list[Any], bound: float, spec: str) -> list[str]:
    """A batch of SQLite REAL or INTEGER amounts as ``sqlite_decimal_converter`` gives them.

    The same proof, per batch with C calls: every value within ``bound``
    (a ``None`` or a string raises ``TypeError`` on the comparison), and each
    formatted text reads back as its value (a NaN never does; an infinity is
    out of bounds).
    """
    if not (-bound < min(values) and max(values) < bound):
        raise ValueError("out of bounds")
    texts = list(map(format, values, repeat(spec, len(values))))
    if list(map(float, texts)) != values:
        raise ValueError("not a decimal with these places")
    return texts


# The names the inline and batch expressions use (see ColumnPlan.inline and .batch).
_INLINE_NAMES: dict[str, Any] = {
    "_bool": _BOOLS.get,
    "_date": datetime.date.fromisoformat,
    "_datetime": datetime.datetime.fromisoformat,
    "_loads": orjson.loads,
    "_long_digit_run": _long_digit_run,
    "_off_path": _off_path,
    "_loads_all": lambda texts: list(map(orjson.loads, texts)),
    "_dashed_uuids": _dashed_uuids,
    "_decimals_as_text": _decimals_as_text,
}
# A naive text plus "+00:00" parses as make_aware(UTC) would give; text that
# already has an offset, or None, fails to parse. A date alone parses with the
# offset ignored (naive): that goes to the converter.
_UTC_DATETIME_INLINE = '$t if ($t := _datetime($v + "+00:00")).tzinfo is not None else $c($v)'
# For NDJSON, whose optimistic records orjson writes with OPT_NAIVE_UTC (see
# ``plan_columns``): a naive datetime is written as the aware UTC one
# make_aware gives, without orjson's slow path for an aware datetime (about
# 100 ns a value). Text with an offset parses aware and goes to the converter.
_NAIVE_UTC_DATETIME_INLINE = "$t if ($t := _datetime($v)).tzinfo is None else $c($v)"
# A batch's JSON texts at once: orjson.loads mapped over the column, unless a
# text holds a run of 19+ digits (one C-speed scan of the whole column, not a
# check per value). A value that is not text makes the join raise TypeError,
# invalid JSON makes orjson raise ValueError: the batch then goes the safe way.
_JSON_COLUMN = '_loads_all($col) if not _long_digit_run(" ".join($col)) else _off_path()'
# A batch's UUIDs at once (32 lowercase hex digits each), dashed by slices.
_UUID_COLUMN = "_dashed_uuids($col)"
# sqlite3's decltype converters that give a naive datetime (first word of the
# declared type, as sqlite3 reads it).
_SQLITE_DATETIME_DECLTYPES = frozenset({"datetime", "timestamp"})


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What to select for each exported column, and how to convert what comes back.

    ``select`` goes to ``values_list``: a field name, or on SQLite a
    ``CAST(... AS text)`` of a date or datetime column, so that the sqlite3
    module's own decltype converters (``parse_datetime`` for every value, in
    Python) do not run; its fast converter parses the text instead, and its
    fallback runs the decltype parser and then Django's converters, exactly
    as a plain read would. ``converters`` holds, per position, ``None`` (the
    value as is), a fast converter or Django's converters.
    """

    select: tuple[str | Cast, ...]
    converters: tuple[Convert | None, ...]
    # Per position, an expression to write in place of the converter call when
    # it is provably the same whenever it does not raise ("$v": the value,
    # "$c": the converter, "$t": a temporary). See ``compile_rows``.
    inline: tuple[str | None, ...]
    # Per position, an expression that converts the batch's whole column at
    # once ("$col": its values), with the same promise as ``inline``; where
    # there is one, it takes the place of ``inline``. See ``compile_rows``.
    batch: tuple[str | None, ...] = ()
    # The inline datetimes are naive and mean UTC: the rows must be written
    # with orjson's OPT_NAIVE_UTC (only asked for NDJSON; see ``plan_columns``).
    naive_utc: bool = False


def plan_columns(
    compiler: SQLCompiler,
    model: type[models.Model],
    names: Sequence[str],
    *,
    naive_utc: bool = False,
) -> ColumnPlan:
    """The plan for ``names`` (concrete fields of ``model``; ``"pk"`` allowed).

    ``naive_utc``: the caller writes the optimistic rows with orjson's
    ``OPT_NAIVE_UTC``, so an inline UTC datetime may stay naive. Granted only
    when no other value of a row can be a naive datetime: every converted
    column has a fast converter (whose values and fallbacks are known), and
    no column read as is has a declared type that sqlite3 parses to one.
    """
    connection = compiler.connection
    alias = model._meta.db_table
    select: list[str | Cast] = []
    found: list[Convert | None] = []
    inline: list[str | None] = []
    batch: list[str | None] = []
    only_known = True
    for name in names:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        assert isinstance(field, models.Field)
        col = field.get_col(alias)
        converters: DjangoConverters = compiler.get_converters([col])
        if not converters:
            select.append(name)
            found.append(None)
            inline.append(None)
            batch.append(None)
            only_known = only_known and not _naive_datetime_decltype(connection, field)
            continue
        convs, expression = converters[0]
        read_text = _sqlite_text_parser(connection, field)
        if read_text is not None:
            slow = _django(connection, convs, expression, read_text)
            select.append(Cast(name, output_field=models.TextField()))
        else:
            slow = _django(connection, convs, expression)
            select.append(name)
        fast = _fast(connection, convs, expression, slow)
        if fast is None:
            only_known = False
            fast = _Fast(slow)
        found.append(fast.convert)
        inline.append(fast.value)
        batch.append(fast.batch)
    naive = naive_utc and only_known and _UTC_DATETIME_INLINE in inline
    if naive:
        inline = [_NAIVE_UTC_DATETIME_INLINE if e == _UTC_DATETIME_INLINE else e for e in inline]
    return ColumnPlan(
        select=tuple(select),
        converters=tuple(found),
        inline=tuple(inline),
        batch=tuple(batch),
        naive_utc=naive,
    )


def _naive_datetime_decltype(
    connection: BaseDatabaseWrapper, field: models.Field[Any, Any]
) -> bool:
    """Whether sqlite3 itself turns this column's values into (naive) datetimes."""
    if connection.vendor != "sqlite":
        return True  # the naive inline is SQLite's only: no need to know
    db_type = (field.db_type(connection) or "").strip().lower()
    return re.split(r"[\s(]", db_type, maxsplit=1)[0] in _SQLITE_DATETIME_DECLTYPES


def _sqlite_text_parser(
    connection: BaseDatabaseWrapper, field: models.Field[Any, Any]
) -> Callable[[str], Any] | None:
    """The sqlite3 decltype converter a plain read of ``field`` would run, if we skip it.

    ``CAST(x AS text)`` gives the very text sqlite3 hands its converters (a
    number's text form included), and NULL stays NULL, which no converter sees.
    """
    if connection.vendor != "sqlite":
        return None
    kind = type(field)
    db_type = field.db_type(connection)
    if kind is models.DateTimeField and db_type == "datetime":
        return dateparse.parse_datetime
    if kind is models.DateField and db_type == "date":
        return dateparse.parse_date
    return None


RowsFunction = Callable[[Sequence[Sequence[Any]]], list[Any]]


def compile_rows(
    converters: Sequence[Convert | None],
    names: Sequence[str] | None = None,
    inline: Sequence[str | None] | None = None,
    batch: Sequence[str | None] | None = None,
    *,
    ndjson_option: int | None = None,
) -> RowsFunction:
    """A function from raw rows to converted rows, without the first column (the pk).

    With ``names`` it gives dicts keyed by them, else tuples (for CSV); with
    ``names`` and ``ndjson_option`` it gives each dict written as an NDJSON
    line (``orjson.dumps`` with ``ndjson.default`` and that option), encoded
    as each row is converted (0.3 us a row less, on the demo orders, than
    building every dict of a batch first). It is generated code, one list
    comprehension with the conversions written out (``{"uuid": c1(v1),
    "status": v4, ...}``), because the generic way (``dict(zip(names,
    map(...)))`` per row, or columns transposed and back) cost about as much
    as the conversions themselves. Only converter positions, ``repr`` of the
    names and this module's ``inline`` and ``batch`` expressions enter the
    source.

    With ``inline`` (``ColumnPlan.inline``), the common case of some columns
    is written as an expression of C calls instead of a converter call; with
    ``batch`` (``ColumnPlan.batch``), a column of the whole batch is
    converted at once before the rows are built. Such an expression raises
    ``TypeError`` or ``ValueError`` on any value it does not convert exactly
    as the converter would; the caller then converts the chunk again without
    them.
    """
    width = len(converters)
    if width < 2:
        raise ValueError("rows need the pk and at least one column")
    if names is not None and len(names) != width - 1:
        raise ValueError("one name per column after the pk")
    if ndjson_option is not None and names is None:
        raise ValueError("NDJSON lines need names")
    namespace: dict[str, Any] = dict(_INLINE_NAMES)
    values = []
    columns = []
    for pos in range(1, width):
        convert = converters[pos]
        expr = inline[pos] if inline is not None else None
        whole = batch[pos] if batch else None
        if convert is None:
            values.append(f"v{pos}")
        elif whole is not None:
            column = f"[row[{pos}] for row in rows]"
            columns.append((f"w{pos}", whole.replace("$col", column)))
            values.append(f"w{pos}")
        elif expr is not None:
            namespace[f"c{pos}"] = convert
            for token, name in (("$v", f"v{pos}"), ("$c", f"c{pos}"), ("$t", f"t{pos}")):
                expr = expr.replace(token, name)
            values.append(f"({expr})")
        elif convert is _sqlite_bool:
            values.append(f"_bool(v{pos}, v{pos})")
        else:
            namespace[f"c{pos}"] = convert
            values.append(f"c{pos}(v{pos})")
    if names is None:
        item = "(" + ", ".join(values) + ",)"
    else:
        item = (
            "{" + ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True)) + "}"
        )
    if ndjson_option is not None:
        namespace.update(_dumps=orjson.dumps, _default=ndjson.default)
        item = f"_dumps({item}, default=_default, option={int(ndjson_option)})"
    row = "(" + ", ".join(f"v{pos}" for pos in range(width)) + ",)"
    source = "def rows_of(rows):\n"
    source += "".join(f"    {name} = {expr}\n" for name, expr in columns)
    if columns:
        targets = ", ".join([row, *(name for name, _expr in columns)])
        sources = ", ".join(["rows", *(name for name, _expr in columns)])
        source += f"    return [{item} for {targets} in zip({sources}, strict=True)]\n"
    else:
        source += f"    return [{item} for {row} in rows]\n"
    exec(compile(source, "<streams.exports.fastpath.compile_rows>", "exec"), namespace)
    rows_of: RowsFunction = namespace["rows_of"]
    return rows_of


def _django(
    connection: BaseDatabaseWrapper,
    convs: list[Callable[..., Any]],
    expression: Any,
    read_text: Callable[[str], Any] | None = None,
) -> Convert:
    """Django's own converters for a column, as ``apply_converters`` runs them.

    ``read_text``: the sqlite3 decltype converter to run first, for a column
    read as text (see ``ColumnPlan``).
    """

    def convert(value: Any) -> Any:
        if read_text is not None and value is not None:
            value = read_text(value)
        for converter in convs:
            value = converter(value, expression, connection)
        return value

    return convert


@dataclass(frozen=True, slots=True)
class _Fast:
    """A column's converter, and its common case per value or per batch (see ``ColumnPlan``)."""

    convert: Convert
    value: str | None = None
    batch: str | None = None


def _fast(
    connection: BaseDatabaseWrapper, convs: list[Callable[..., Any]], expression: Any, slow: Convert
) -> _Fast | None:
    """A fast converter for the column and its common case, or ``None``."""
    if not isinstance(expression, Col) or len(convs) != 1:
        return None
    field = expression.output_field
    kind = type(field)
    if isinstance(field, models.JSONField) and kind is models.JSONField:
        if connection.vendor not in ("sqlite", "postgresql") or field.decoder is not None:
            return None
        return _Fast(json_converter(slow), batch=_JSON_COLUMN)
    if connection.vendor != "sqlite":
        return None
    if isinstance(field, models.DecimalField) and kind is models.DecimalField:
        places, digits = field.decimal_places, field.max_digits
        if places is None or digits is None or not 0 <= places <= _MAX_FAST_DECIMAL_PLACES:
            return None
        bound = 10.0 ** (min(digits, _SQLITE_DIGITS) - places)
        # As the converter's float case (an int in range formats the same way).
        return _Fast(
            sqlite_decimal_converter(places, digits, slow),
            batch=f"_decimals_as_text($col, {bound!r}, '.{places}f')",
        )
    if kind is models.DateTimeField:
        tz = connection.timezone if settings.USE_TZ else None
        utc = _UTC_DATETIME_INLINE if tz is datetime.UTC else None
        return _Fast(_sqlite_datetime(tz, slow), value=utc)
    if kind is models.DateField:
        return _Fast(_sqlite_date(slow), value="_date($v)")
    if kind is models.UUIDField:
        return _Fast(_sqlite_uuid(slow), batch=_UUID_COLUMN)
    if kind is models.BooleanField:
        return _Fast(_sqlite_bool, value="_bool($v, $v)")
    return None


def json_converter(slow: Convert) -> Convert:
    """``json.loads`` via orjson: same values for all text both accept.

    orjson refuses what json.loads accepts beyond the standard (NaN,
    Infinity, numbers overflowing a float, lone surrogates): those, and long
    digit runs, go to Django's converter, which also keeps invalid JSON as text.
    """
    loads, error = orjson.loads, orjson.JSONDecodeError

    def convert(value: Any) -> Any:
        if type(value) is str and _LONG_DIGITS(value) is None:
            try:
                return loads(value)
            except error:
                pass
        return slow(value)

    return convert


def sqlite_decimal_converter(places: int, max_digits: int, slow: Convert) -> Convert:
    """SQLite's REAL or INTEGER as the string of Django's quantized ``Decimal``.

    Django rounds a float to 15 significant digits, then quantizes. When the
    float is the nearest double to a decimal ``r`` with ``places`` places and at
    most 15 digits (``float(r) == value``, as for every value Django wrote),
    that rounding gives ``r`` exactly, so ``r`` is the answer. Integers are
    exact. Anything else (a string, too many digits) is Django's.
    """
    fmt = f".{places}f"
    int_bound = 10 ** (max_digits - places)
    float_bound = 10.0 ** (min(max_digits, _SQLITE_DIGITS) - places)
    zeros = "." + "0" * places if places else ""
    isfinite = math.isfinite

    def convert(value: Any) -> Any:
        if value is None:
            return None
        kind = type(value)
        if kind is float:
            if isfinite(value) and -float_bound < value < float_bound:
                text = format(value, fmt)
                if float(text) == value:
                    return text
        elif kind is int and -int_bound < value < int_bound:
            return f"{value}{zeros}"
        return slow(value)

    return convert


def _sqlite_datetime(tz: datetime.tzinfo | None, slow: Convert) -> Convert:
    """``parse_datetime`` starts with ``fromisoformat``; ``make_aware`` is ``replace``."""
    parse = datetime.datetime.fromisoformat

    def convert(value: Any) -> Any:
        if type(value) is str:
            try:
                parsed = parse(value)
            except ValueError:
                return slow(value)
            if tz is None or parsed.tzinfo is not None:
                return parsed
            return parsed.replace(tzinfo=tz)
        return slow(value)

    return convert


def _sqlite_date(slow: Convert) -> Convert:
    parse = datetime.date.fromisoformat

    def convert(value: Any) -> Any:
        if type(value) is str:
            try:
                return parse(value)
            except ValueError:
                pass
        return slow(value)

    return convert


def _sqlite_uuid(slow: Convert) -> Convert:
    """Django stores a UUID as 32 lowercase hex digits; exported with dashes."""

    def convert(value: Any) -> Any:
        if type(value) is str and len(value) == 32 and _HEX32(value) is not None:
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return slow(value)

    return convert


def _sqlite_bool(value: Any) -> Any:
    """``bool(value) if value in (1, 0) else value``, as Django's converter."""
    return _BOOLS.get(value, value)
