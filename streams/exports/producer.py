"""Exports: the allow-list of exportable models and the one producer of export bytes.

Design choices:

* **Allow-list, from settings.** ``STREAMBOARD_EXPORTS`` maps a model label to
  the fields that may leave the server. A model that is not listed is not
  exportable at all (``get_exportable`` raises ``LookupError``); a field that
  looks secret (password, token, key...) is refused here and by the system
  check ``streams.E001``.
* **One producer, two drivers.** ``iter_export`` (sync: the CLI and the task
  worker) and ``aiter_export`` (async: the streamed view) run the same
  ``_fetch_chunk`` function, so they give the same bytes for the same query.
  The async one makes one ``database_sync_to_async`` hop per chunk; fetching
  and encoding both happen in that hop, off the event loop, one chunk ahead
  of the consumer.
* **Keyset chunks, not a cursor.** Every chunk is its own short query,
  ``WHERE pk > last ORDER BY pk LIMIT n``. The issue suggests a server-side
  cursor on PostgreSQL; keyset chunks reach the same goal (nothing builds the
  whole result) and do better for a stream: a cursor needs a transaction and a
  connection held open for as long as the slowest client takes to read, while
  a keyset chunk holds the connection for milliseconds and
  ``database_sync_to_async`` closes it between chunks. It works the same on
  SQLite, and it is what makes ``after=<pk>`` resumption exact and free.
  Hence rows always come in primary-key order, and exportable models need an
  integer primary key (``streams.E004``).
* **Errors propagate.** A row that cannot be encoded (``ExportEncodingError``,
  naming the row) or a database that goes away raises out of the generator;
  the server then aborts the connection, so a client sees a broken transfer
  and never a clean short file.
* **Batching.** One yield per chunk of rows (2000 by default): one ASGI
  message per row costs 2-3x the throughput (see the bench results).
* **Raw values, Django's bytes.** The ORM builds the query (filters,
  ``after``, order, the allow-listed fields), but rows skip Django's per-value
  converters, which took two thirds of the export's time turning database
  text into ``Decimal``/``UUID``/``datetime``/dict only for orjson to turn
  them back into text. ``streams.exports.fastpath`` converts each column straight to
  what the encoders turn into the same bytes, falling back to Django's own
  converters for anything it cannot prove equal (``tests/test_export_fast_path.py``
  checks fast == Django on SQLite and PostgreSQL).
* **Bounded objects.** Within a chunk, rows are read, converted and encoded
  250 at a time (``ENCODE_BATCH``), so only that many rows are ever Python
  objects; a chunk is its encoded bytes. ``aiter_export`` reads one chunk
  ahead, so the database thread encodes while the event loop sends.
* CSV output starts with a header row, except when resuming with ``after``:
  a resumed download is appended to the part already received, which has it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from channels.db import database_sync_to_async
from django.apps import apps
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ImproperlyConfigured
from django.db import connections, models
from django.db.models.sql.compiler import SQLCompiler

from streams import conf
from streams.exports import csv_rows, fastpath, ndjson

ExportFormat = Literal["ndjson", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
CHUNK_SIZE = 2000
# Rows converted and encoded at a time within a chunk (bounds the Python objects alive).
ENCODE_BATCH = 250
# Stands for ``after`` while a chunk's query is compiled once: no row has it as its pk.
_AFTER_PLACEHOLDER = -(2**62) - 7919

CONTENT_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}

# A field whose name contains one of these words is never exportable.
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|pwd|passphrase|token|secret|key|apikey|hash|salt|otp|"
    r"credentials?|private)s?($|_)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


@dataclass(frozen=True, slots=True)
class Exportable:
    """A model configured for export, with the fields that may leave the server."""

    model: type[models.Model]
    label: str
    fields: tuple[str, ...]

    def model_field(self, name: str) -> models.Field[Any, Any]:
        field = self.model._meta.get_field(name)
        assert isinstance(field, models.Field)
        return field

    def filename(self, fmt: ExportFormat) -> str:
        return f"{self.label}.{fmt}"


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """Encoded bytes for ``rows`` rows (plus the CSV header in the first chunk)."""

    data: bytes
    rows: int
    last_pk: int | None


def exportable_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The concrete model field ``name``, or ``ImproperlyConfigured`` saying why not."""
    if is_secret_name(name):
        raise ImproperlyConfigured(
            f"{model._meta.label_lower}.{name} looks secret; not exportable."
        )
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(f"{model._meta.label_lower} has no field {name!r}.") from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise ImproperlyConfigured(
            f"{model._meta.label_lower}.{name} is not a concrete column; only those export."
        )
    return field


def get_exportable(label: str) -> Exportable:
    """The exportable model ``label`` ("app_label.model_name").

    Raises ``LookupError`` when no such model exists or it is not configured
    for export, and ``ImproperlyConfigured`` for a broken configuration.
    """
    label = label.lower()
    allow_list = conf.export_allow_list()
    if label not in allow_list:
        raise LookupError(f"{label} is not configured for export.")
    model = apps.get_model(label)
    fields = tuple(allow_list[label])
    for name in fields:
        exportable_field(model, name)
    return Exportable(model=model, label=label, fields=fields)


def exportables() -> list[Exportable]:
    """Every model configured for export (installed ones only)."""
    found = []
    for label in conf.export_allow_list():
        try:
            found.append(get_exportable(label))
        except LookupError:
            continue
    return found


def count_rows(queryset: models.QuerySet[Any], after: int | None = None) -> int:
    """How many rows an export of ``queryset`` (resumed after ``after``) holds."""
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    return queryset.count()


async def acount_rows(queryset: models.QuerySet[Any], after: int | None = None) -> int:
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    return await queryset.acount()


class ExportEncodingError(RuntimeError):
    """A row holds a value the format cannot carry (an integer beyond 64 bits in JSON).

    Deliberately not a ``TypeError`` (which orjson raises): Django's streaming
    response would take a ``TypeError`` from an async iterator for "this is a
    sync iterator" and hide the real error behind a confusing one.
    """


class _Encoder:
    """Turns fetched rows into bytes for one format; built once per export."""

    def __init__(self, model: type[models.Model], fields: Sequence[str], fmt: ExportFormat):
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {EXPORT_FORMATS}")
        self.model = model
        self.fields = tuple(fields)
        self.fmt = fmt
        self.model_label = model._meta.label_lower
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._sql: dict[tuple[str, int], tuple[str, tuple[Any, ...], int | None]] = {}
        self.cells: list[csv_rows.Cell] = [
            csv_rows.json_cell
            if isinstance(model._meta.get_field(name), models.JSONField)
            else csv_rows.plain_cell
            for name in self.fields
        ]

    def header(self) -> bytes:
        return csv_rows.encode_header(self.fields) if self.fmt == "csv" else b""

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Encode converted rows (tuples in ``fields`` order): the plain way."""
        if self.fmt == "csv":
            return csv_rows.encode_rows(self.cells, rows)
        return ndjson.encode_rows(self.fields, rows)

    def raw_rows(self, convert: fastpath.RowsFunction, fetched: Sequence[Sequence[Any]]) -> bytes:
        """Encode raw rows (pk first) through ``convert`` (see ``_Plan``)."""
        if self.fmt == "csv":
            return csv_rows.encode_rows(self.cells, convert(fetched))
        return ndjson.encode_dicts(convert(fetched))

    def chunk_sql(
        self, queryset: models.QuerySet[Any], plan: _Plan, after: int | None, chunk_size: int
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters of one keyset chunk, built by the ORM.

        Only ``after`` changes from one chunk to the next, so the query is
        compiled once, with a placeholder ``after`` whose parameter is then
        swapped for each chunk (0.3 ms per chunk otherwise). When the
        placeholder cannot be told apart from the other parameters, every
        chunk is compiled. Raises ``EmptyResultSet`` for a query that can
        match nothing.
        """
        if after is None:
            return self._compile(queryset, plan, chunk_size)
        key = (queryset.db, chunk_size)
        if key not in self._sql:
            sql, params = self._compile(
                queryset.filter(pk__gt=_AFTER_PLACEHOLDER), plan, chunk_size
            )
            found = [i for i, value in enumerate(params) if value == _AFTER_PLACEHOLDER]
            self._sql[key] = (sql, tuple(params), found[0] if len(found) == 1 else None)
        sql, cached, index = self._sql[key]
        if index is None:
            return self._compile(queryset.filter(pk__gt=after), plan, chunk_size)
        params = list(cached)
        params[index] = after
        return sql, params

    @staticmethod
    def _compile(
        queryset: models.QuerySet[Any], plan: _Plan, chunk_size: int
    ) -> tuple[str, list[Any]]:
        query = queryset.order_by("pk").values_list(*plan.columns.select)[:chunk_size].query
        sql, params = query.get_compiler(using=queryset.db).as_sql()
        return sql, list(params)

    def plan(self, compiler: SQLCompiler) -> _Plan:
        """The column plan for this export on ``compiler``'s database, made once."""
        key = (compiler.connection.alias, compiler.connection.vendor)
        plan = self._plans.get(key)
        if plan is None:
            columns = fastpath.plan_columns(compiler, self.model, ("pk", *self.fields))
            names = self.fields if self.fmt == "ndjson" else None
            plan = self._plans[key] = _Plan(
                columns=columns,
                optimistic=fastpath.compile_rows(columns.converters, names, columns.inline),
                safe=fastpath.compile_rows(columns.converters, names),
            )
        return plan


@dataclass(frozen=True, slots=True)
class _Plan:
    """What an export selects and its two row converters.

    ``optimistic`` writes the common case of some columns inline and raises on
    anything else; ``safe`` is the one to use then (see ``fastpath``).
    """

    columns: fastpath.ColumnPlan
    optimistic: fastpath.RowsFunction
    safe: fastpath.RowsFunction


def _fetch_chunk(
    queryset: models.QuerySet[Any], encoder: _Encoder, after: int | None, chunk_size: int
) -> ExportChunk:
    """One short keyset query and its encoding: the unit of work of every export.

    The ORM builds and runs the query (filters, ``after``, order, fields), but
    the rows skip Django's per-value converters: ``streams.exports.fastpath`` gives
    each column a converter that yields the same bytes for a fraction of the
    cost (or Django's own converters where it cannot prove that).
    """
    plan = encoder.plan(queryset.query.get_compiler(using=queryset.db))
    try:
        sql, params = encoder.chunk_sql(queryset, plan, after, chunk_size)
    except EmptyResultSet:
        return ExportChunk(data=b"", rows=0, last_pk=after)
    parts: list[bytes] = []
    rows = 0
    last_row: Sequence[Any] | None = None
    # fetchmany() batches of raw rows, each converted and encoded before the
    # next is read: only one small batch is ever Python objects.
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(ENCODE_BATCH):
            parts.append(_encode_batch(encoder, plan, batch))
            rows += len(batch)
            last_row = batch[-1]
    if last_row is None:
        return ExportChunk(data=b"", rows=0, last_pk=after)
    pk_converter = plan.columns.converters[0]
    last_pk = last_row[0] if pk_converter is None else pk_converter(last_row[0])
    return ExportChunk(data=b"".join(parts), rows=rows, last_pk=last_pk)


def _encode_batch(encoder: _Encoder, plan: _Plan, batch: Sequence[Sequence[Any]]) -> bytes:
    try:
        return encoder.raw_rows(plan.optimistic, batch)
    except (TypeError, ValueError):
        # A value off the common path (or one that cannot be encoded): again, safely.
        try:
            return encoder.raw_rows(plan.safe, batch)
        except (TypeError, ValueError) as error:
            raise ExportEncodingError(_failing_row(encoder, plan.safe, batch, error)) from error


def _failing_row(
    encoder: _Encoder,
    convert: fastpath.RowsFunction,
    fetched: Sequence[Sequence[Any]],
    error: Exception,
) -> str:
    """Which row of a chunk failed to encode (found again row by row: failures are rare)."""
    for row in fetched:
        try:
            encoder.raw_rows(convert, [row])
        except (TypeError, ValueError) as row_error:
            return f"{encoder.model_label} pk={row[0]} cannot be encoded: {row_error}"
    return f"a {encoder.model_label} chunk cannot be encoded: {error}"


def _check_fields(queryset: models.QuerySet[Any], fields: Sequence[str]) -> None:
    if not fields:
        raise ValueError("an export needs at least one field")
    for name in fields:
        exportable_field(queryset.model, name)


def iter_export(
    queryset: models.QuerySet[Any],
    fields: Sequence[str],
    fmt: ExportFormat,
    *,
    after: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[ExportChunk]:
    """Export ``queryset``'s ``fields`` in primary-key order, one chunk per query.

    ``fields`` must already be validated against the allow-list (the form
    does); this only refuses secret-looking or non-column names. The first
    chunk of a CSV export carries the header (unless ``after`` is given) and
    may have ``rows == 0`` when the queryset is empty.
    """
    _check_fields(queryset, fields)
    encoder = _Encoder(queryset.model, fields, fmt)
    header = encoder.header() if after is None else b""
    last = after
    while True:
        chunk = _fetch_chunk(queryset, encoder, last, chunk_size)
        if header:
            chunk = ExportChunk(header + chunk.data, chunk.rows, chunk.last_pk)
            header = b""
        if chunk.data:
            yield chunk
        if chunk.rows < chunk_size:
            return
        last = chunk.last_pk


async def aiter_export(
    queryset: models.QuerySet[Any],
    fields: Sequence[str],
    fmt: ExportFormat,
    *,
    after: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> AsyncGenerator[ExportChunk]:
    """``iter_export`` for the event loop: the same chunks, one thread hop per chunk.

    No database connection is held between chunks: ``database_sync_to_async``
    closes it after each hop (with ``CONN_MAX_AGE = 0``), so a slow client
    costs no connection.
    """
    _check_fields(queryset, fields)
    encoder = _Encoder(queryset.model, fields, fmt)
    header = encoder.header() if after is None else b""
    fetch = database_sync_to_async(_fetch_chunk)
    # One chunk ahead: the next one is fetched and encoded in the database
    # thread while this one is being sent (the event loop mostly waits on the
    # socket then), so the two overlap instead of taking turns. At most two
    # chunks exist at once, and each hop still holds its connection only for
    # its own query.
    pending: asyncio.Future[ExportChunk] | None = asyncio.ensure_future(
        fetch(queryset, encoder, after, chunk_size)
    )
    try:
        while pending is not None:
            chunk = await pending
            pending = None
            if chunk.rows == chunk_size:
                pending = asyncio.ensure_future(fetch(queryset, encoder, chunk.last_pk, chunk_size))
            if header:
                chunk = ExportChunk(header + chunk.data, chunk.rows, chunk.last_pk)
                header = b""
            if chunk.data:
                yield chunk
    finally:
        if pending is not None:
            # The consumer went away: drop the chunk ahead (its hop ends on its own).
            pending.cancel()
            pending.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[ExportChunk]) -> None:
    """Mark a dropped chunk's outcome as seen (no "exception never retrieved" noise)."""
    if not future.cancelled():
        future.exception()
