"""CSV encoding: a batch of rows to bytes, through the stdlib ``csv`` module.

Cells are written as the NDJSON export writes them, so a CSV and an NDJSON
export of the same query carry the same values: ISO 8601 dates and times,
decimals exactly, UUIDs in canonical form, booleans as ``true``/``false``,
NULL as an empty cell and JSON fields as JSON text. Lines end with ``\\r\\n``
(RFC 4180).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from streams.exports.ndjson import default as json_default

Cell = Callable[[Any], object]


def plain_cell(value: Any) -> object:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def json_cell(value: Any) -> object:
    """A JSON field's value as JSON text (``null`` stays JSON, unlike a NULL column)."""
    return orjson.dumps(value, default=json_default).decode()


def encode_header(fields: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(fields)
    return buffer.getvalue().encode()


def encode_rows(cells: Sequence[Cell], rows: Iterable[Sequence[Any]]) -> bytes:
    """Encode ``rows``; ``cells`` holds one converter per column (see ``plain_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([cell(value) for cell, value in zip(cells, row, strict=True)] for row in rows)
    return buffer.getvalue().encode()
