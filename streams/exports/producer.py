"""Exports: the one producer of export bytes, for the view, the CLI and the task.

Design choices:

* **Allowed fields only.** The allow-list (``streams.exports.allow_list``)
  says which models and fields may leave the server; the producer refuses
  secret-looking or non-column names again, whoever calls it.
* **Formats from one table.** Header bytes, the row shape and the encoder of
  each format come from ``streams.exports.formats``.
* **One producer, two drivers.** ``iter_export`` (sync: the CLI and the task
  worker) and ``aiter_export`` (async: the streamed view) run the same
  ``_fetch_chunk`` function, so they give the same bytes for the same query.
  The async one makes one ``database_sync_to_async`` hop per
  ``HOP_CHUNKS`` chunks; fetching and encoding happen in that hop, off the
  event loop, one hop ahead of the consumer.
* **Thread hops.** A hop costs more than its ``sync_to_async`` call: with
  ``CONN_MAX_AGE = 0`` each one opens and closes a database connection
  (0.6 ms on SQLite). Several chunks per hop (up to ``HOP_CHUNKS``, until
  ``HOP_BYTES`` of encoded bytes: three of the demo's 2000-row chunks) cut
  the streamed export's CPU per row by 10-15 % against one
  (docs/benchmarks.md, "NDJSON direct path"), for a few MiB more peak
  memory: two hops of bytes alive at most. A hop still holds its
  connection only for its own queries.
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
* **Batching.** One yield per chunk of rows (``STREAMBOARD_EXPORT_CHUNK_SIZE``,
  2000 by default, for every driver: the view, the CLI and the task): one ASGI
  message per row costs 2-3x the throughput (see the bench results).
* **Raw values, Django's bytes.** The ORM builds the query (filters,
  ``after``, order, the allow-listed fields), but rows skip Django's per-value
  converters, which took two thirds of the export's time turning database
  text into ``Decimal``/``UUID``/``datetime``/dict only for orjson to turn
  them back into text. ``streams.exports.fastpath`` converts each column straight to
  what the encoders turn into the same bytes, falling back to Django's own
  converters for anything it cannot prove equal (``tests/exports/test_export_fast_path.py``
  checks fast == Django on SQLite and PostgreSQL).
* **Bounded objects.** Within a chunk, rows are read, converted and encoded
  250 at a time (``ENCODE_BATCH``), so only that many rows are ever Python
  objects; a chunk is its encoded bytes. ``aiter_export`` reads one hop
  ahead, so the database thread encodes while the event loop sends.
* CSV output starts with a header row, except when resuming with ``after``:
  a resumed download is appended to the part already received, which has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from channels.db import database_sync_to_async
from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models.sql.compiler import SQLCompiler

from streams import conf
from streams.exports import fastpath
from streams.exports.allow_list import exportable_field
from streams.exports.formats import ExportFormat, get_format

# Rows converted and encoded at a time within a chunk (bounds the Python objects alive).
ENCODE_BATCH = 250
# Stands for ``after`` while a chunk's query is compiled once: no row has it as its
# pk. Public so a test can build the ambiguous case where a filter value equals it.
AFTER_PLACEHOLDER = -(2**62) - 7919
# At most this many chunks per thread hop of ``aiter_export``, and no further chunk
# once a hop's encoded bytes reach HOP_BYTES (wide rows: one chunk, as before).
HOP_CHUNKS = 4
HOP_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """Encoded bytes for ``rows`` rows (plus the CSV header in the first chunk)."""

    data: bytes
    rows: int
    last_pk: int | None


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
        self.format = get_format(fmt)
        self.model = model
        self.fields = tuple(fields)
        self.model_label = model._meta.label_lower
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._sql: dict[tuple[str, int], tuple[str, tuple[Any, ...], int | None]] = {}
        self.encode = self.format.encoder([exportable_field(model, name) for name in self.fields])

    def header(self) -> bytes:
        return self.format.header(self.fields)

    def raw_rows(self, convert: fastpath.RowsFunction, fetched: Sequence[Sequence[Any]]) -> bytes:
        """Encode raw rows (pk first) through ``convert`` (see ``_Plan``)."""
        return self.encode(convert(fetched))

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
            sql, params = self._compile(queryset.filter(pk__gt=AFTER_PLACEHOLDER), plan, chunk_size)
            found = [i for i, value in enumerate(params) if value == AFTER_PLACEHOLDER]
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
            option = self.format.ndjson_option
            columns = fastpath.plan_columns(
                compiler, self.model, ("pk", *self.fields), naive_utc=option is not None
            )
            names = self.fields if self.format.records else None
            optimistic_option = option
            if option is not None and columns.naive_utc:
                optimistic_option = option | orjson.OPT_NAIVE_UTC
            plan = self._plans[key] = _Plan(
                columns=columns,
                optimistic=fastpath.compile_rows(
                    columns.converters,
                    names,
                    columns.inline,
                    columns.batch,
                    ndjson_option=optimistic_option,
                ),
                safe=fastpath.compile_rows(columns.converters, names, ndjson_option=option),
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
    chunk_size: int | None = None,
) -> Iterator[ExportChunk]:
    """Export ``queryset``'s ``fields`` in primary-key order, one chunk per query.

    ``fields`` must already be validated against the allow-list (the form
    does); this only refuses secret-looking or non-column names. The first
    chunk of a CSV export carries the header (unless ``after`` is given) and
    may have ``rows == 0`` when the queryset is empty. ``chunk_size``
    defaults to ``STREAMBOARD_EXPORT_CHUNK_SIZE``.
    """
    if chunk_size is None:
        chunk_size = conf.export_chunk_size()
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


@dataclass(frozen=True, slots=True)
class _Hop:
    """What one thread hop of ``aiter_export`` fetched: chunks, then maybe the error that
    stopped it (raised once the chunks before it are sent, as ``iter_export`` would)."""

    chunks: list[ExportChunk]
    error: Exception | None = None


def _fetch_hop(
    queryset: models.QuerySet[Any],
    encoder: _Encoder,
    after: int | None,
    chunk_size: int,
    count: int,
) -> _Hop:
    """Up to ``count`` consecutive chunks in one thread hop, on one connection.

    Stops early at the last chunk (fewer rows than ``chunk_size``) and once
    the chunks hold ``HOP_BYTES``: what bounds memory is bytes, not rows. A failure
    after the first chunk is returned with the chunks before it, so they are
    sent before the export fails; a failure in the first one raises.
    """
    chunks: list[ExportChunk] = []
    size = 0
    while len(chunks) < count and size < HOP_BYTES:
        try:
            chunk = _fetch_chunk(queryset, encoder, after, chunk_size)
        except Exception as error:
            if not chunks:
                raise
            return _Hop(chunks, error)
        chunks.append(chunk)
        size += len(chunk.data)
        if chunk.rows < chunk_size:
            break
        after = chunk.last_pk
    return _Hop(chunks)


async def aiter_export(
    queryset: models.QuerySet[Any],
    fields: Sequence[str],
    fmt: ExportFormat,
    *,
    after: int | None = None,
    chunk_size: int | None = None,
    chunks_per_hop: int = HOP_CHUNKS,
) -> AsyncGenerator[ExportChunk]:
    """``iter_export`` for the event loop: the same chunks, ``chunks_per_hop`` per thread hop.

    No database connection is held between hops: ``database_sync_to_async``
    closes it after each one (with ``CONN_MAX_AGE = 0``), so a slow client
    costs no connection.
    """
    if chunk_size is None:
        chunk_size = conf.export_chunk_size()
    _check_fields(queryset, fields)
    encoder = _Encoder(queryset.model, fields, fmt)
    header = encoder.header() if after is None else b""
    fetch = database_sync_to_async(_fetch_hop)
    # One hop ahead: the next chunks are fetched and encoded in the database
    # thread while these are being sent (the event loop mostly waits on the
    # socket then), so the two overlap instead of taking turns. At most two
    # hops' chunks exist at once, and each hop holds its connection only for
    # its own queries.
    pending: asyncio.Future[_Hop] | None = asyncio.ensure_future(
        fetch(queryset, encoder, after, chunk_size, chunks_per_hop)
    )
    try:
        while pending is not None:
            hop = await pending
            pending = None
            last = hop.chunks[-1]
            if hop.error is None and last.rows == chunk_size:
                pending = asyncio.ensure_future(
                    fetch(queryset, encoder, last.last_pk, chunk_size, chunks_per_hop)
                )
            for chunk in hop.chunks:
                if header:
                    chunk = ExportChunk(header + chunk.data, chunk.rows, chunk.last_pk)
                    header = b""
                if chunk.data:
                    yield chunk
            if hop.error is not None:
                raise hop.error
            del hop, last, chunk  # not kept alive while the next hop is awaited
    finally:
        if pending is not None:
            # The consumer went away: drop the hop ahead (it ends on its own).
            pending.cancel()
            pending.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[_Hop]) -> None:
    """Mark a dropped chunk's outcome as seen (no "exception never retrieved" noise)."""
    if not future.cancelled():
        future.exception()
