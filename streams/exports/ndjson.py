"""NDJSON encoding: a batch of rows to bytes, one JSON object per line.

A pure function from rows to bytes, so the streamed view, the CLI and the
background worker produce identical files. orjson writes datetimes, dates,
times and UUIDs natively (ISO 8601, canonical UUID text); ``Decimal`` goes
through ``default`` as its exact string, never a float. Anything orjson cannot
encode (an integer beyond 64 bits inside a JSON field, say) raises
``orjson.JSONEncodeError``: the export must fail loudly, not skip the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson

OPTIONS = orjson.OPT_APPEND_NEWLINE


def default(value: object) -> str:
    """Decimals exactly, as strings; anything else unknown is an encoding error."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encode_rows(fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Encode ``rows`` (tuples in ``fields`` order) as newline-terminated JSON objects."""
    dumps = orjson.dumps
    return b"".join(
        dumps(dict(zip(fields, row, strict=True)), default=default, option=OPTIONS) for row in rows
    )


def join_lines(lines: Iterable[bytes]) -> bytes:
    """Lines the export's row function already wrote (``fastpath.compile_rows``)."""
    return b"".join(lines)
