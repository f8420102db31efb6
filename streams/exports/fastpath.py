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
unchanged. ``tests/test_export_fast_path.py`` checks fast == Django bytes on
awkward and random values, on SQLite and on PostgreSQL.

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
from typing import Any

import orjson
from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Col
from django.db.models.functions import Cast
from django.db.models.sql.compiler import SQLCompiler
from django.utils import dateparse

Convert = Callable[[Any], Any]
# What SQLCompiler.get_converters() returns: position -> (converters, expression).
DjangoConverters = dict[int, tuple[list[Callable[..., Any]], Any]]

_HEX32 = re.compile(r"[0-9a-f]{32}").fullmatch
# orjson.loads reads integers beyond 64 bits as floats where json.loads keeps
# them exact (and the encoder then refuses them): any run of 19+ digits goes
# the slow way. 18 digits always fit in a signed 64-bit integer.
_LONG_DIGITS = re.compile(r"[0-9][0-9]{18}").search  # the fastest spelling measured
_BOOLS: dict[Any, Any] = {0: False, 1: True}
# Decimal's str() switches to exponent notation below 1E-6: fast path up to 6 places.
_MAX_FAST_DECIMAL_PLACES = 6
# SQLite keeps 15 significant digits (Django rounds floats to 15 digits).
_SQLITE_DIGITS = 15

# Inline expressions (see ColumnPlan.inline) and the names they use.
_INLINE_NAMES: dict[str, Any] = {
    "_bool": _BOOLS.get,
    "_float": float,
    "_format": format,
    "_date": datetime.date.fromisoformat,
    "_datetime": datetime.datetime.fromisoformat,
    "_loads": orjson.loads,
    "_long_digits": _LONG_DIGITS,
    "_encode": str.encode,
    "_translate": bytes.translate,
    "_NON_DIGITS": bytes(b for b in range(256) if not 0x30 <= b <= 0x39),
    "_uuid_parts": re.compile(
        "([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})"
    ).fullmatch,
    "_dash": "-".join,
}
# A naive text plus "+00:00" parses as make_aware(UTC) would give; text that
# already has an offset, or None, fails to parse. A date alone parses with the
# offset ignored (naive): that goes to the converter.
_UTC_DATETIME_INLINE = '$t if ($t := _datetime($v + "+00:00")).tzinfo is not None else $c($v)'
# None or invalid JSON raises; long digit runs go to the converter. Counting
# all digits first (C calls) spares most texts the slower regex.
_JSON_INLINE = (
    "_loads($v) if len(_translate(_encode($v), None, _NON_DIGITS)) < 19"
    " or _long_digits($v) is None else $c($v)"
)
# None raises; anything but 32 lowercase hex digits goes to the converter.
_UUID_INLINE = "_dash($t.groups()) if ($t := _uuid_parts($v)) is not None else $c($v)"


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


def plan_columns(
    compiler: SQLCompiler, model: type[models.Model], names: Sequence[str]
) -> ColumnPlan:
    """The plan for ``names`` (concrete fields of ``model``; ``"pk"`` allowed)."""
    connection = compiler.connection
    alias = model._meta.db_table
    select: list[str | Cast] = []
    found: list[Convert | None] = []
    inline: list[str | None] = []
    for name in names:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        assert isinstance(field, models.Field)
        col = field.get_col(alias)
        converters: DjangoConverters = compiler.get_converters([col])
        if not converters:
            select.append(name)
            found.append(None)
            inline.append(None)
            continue
        convs, expression = converters[0]
        read_text = _sqlite_text_parser(connection, field)
        if read_text is not None:
            slow = _django(connection, convs, expression, read_text)
            select.append(Cast(name, output_field=models.TextField()))
        else:
            slow = _django(connection, convs, expression)
            select.append(name)
        fast, expr = _fast(connection, convs, expression, slow) or (slow, None)
        found.append(fast)
        inline.append(expr)
    return ColumnPlan(select=tuple(select), converters=tuple(found), inline=tuple(inline))


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
) -> RowsFunction:
    """A function from raw rows to converted rows, without the first column (the pk).

    With ``names`` it gives dicts keyed by them (for NDJSON), else tuples (for
    CSV). It is generated code, one list comprehension with the conversions
    written out (``{"uuid": c1(v1), "status": v4, ...}``), because the
    generic way (``dict(zip(names, map(...)))`` per row, or columns
    transposed and back) cost about as much as the conversions themselves.
    Only converter positions, ``repr`` of the names and this module's
    ``inline`` expressions enter the source.

    With ``inline`` (``ColumnPlan.inline``), the common case of some columns
    is written as an expression of C calls instead of a converter call. Such
    an expression raises ``TypeError`` or ``ValueError`` on any value it does
    not convert exactly as the converter would; the caller then converts the
    chunk again without ``inline``.
    """
    width = len(converters)
    if width < 2:
        raise ValueError("rows need the pk and at least one column")
    if names is not None and len(names) != width - 1:
        raise ValueError("one name per column after the pk")
    namespace: dict[str, Any] = dict(_INLINE_NAMES)
    values = []
    for pos in range(1, width):
        convert = converters[pos]
        expr = inline[pos] if inline is not None else None
        if convert is None:
            values.append(f"v{pos}")
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
    unpack = ", ".join(f"v{pos}" for pos in range(width))
    source = f"def rows_of(rows):\n    return [{item} for ({unpack},) in rows]\n"
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


def _fast(
    connection: BaseDatabaseWrapper, convs: list[Callable[..., Any]], expression: Any, slow: Convert
) -> tuple[Convert, str | None] | None:
    """A fast converter for the column and its inline expression, or ``None``."""
    if not isinstance(expression, Col) or len(convs) != 1:
        return None
    field = expression.output_field
    kind = type(field)
    if isinstance(field, models.JSONField) and kind is models.JSONField:
        if connection.vendor not in ("sqlite", "postgresql") or field.decoder is not None:
            return None
        return json_converter(slow), _JSON_INLINE
    if connection.vendor != "sqlite":
        return None
    if isinstance(field, models.DecimalField) and kind is models.DecimalField:
        places, digits = field.decimal_places, field.max_digits
        if places is None or digits is None or not 0 <= places <= _MAX_FAST_DECIMAL_PLACES:
            return None
        bound = 10.0 ** (min(digits, _SQLITE_DIGITS) - places)
        # As the converter's float case (an int in range formats the same way).
        # None or a string raises on the comparison.
        inline = (
            f"$t if -{bound!r} < $v < {bound!r} and _float($t := _format($v, '.{places}f')) == $v"
            " else $c($v)"
        )
        return sqlite_decimal_converter(places, digits, slow), inline
    if kind is models.DateTimeField:
        tz = connection.timezone if settings.USE_TZ else None
        return _sqlite_datetime(tz, slow), _UTC_DATETIME_INLINE if tz is datetime.UTC else None
    if kind is models.DateField:
        return _sqlite_date(slow), "_date($v)"
    if kind is models.UUIDField:
        return _sqlite_uuid(slow), _UUID_INLINE
    if kind is models.BooleanField:
        return _sqlite_bool, "_bool($v, $v)"
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
