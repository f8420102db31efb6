"""The export formats: one table from a format's name to everything that differs by format.

Every place that needs to know about a format asks this table: the streamed
view (response class, file name), the download of a finished job (content
type), the ``export`` command (``--format`` choices, the output suffix), the
producer (header bytes, the row encoder) and the system check that keeps
``ExportJob.Format`` in step (``streams.E006``). Adding a format is one row
here plus its encoder module.

The encoders themselves are pure functions from converted rows to bytes
(``ndjson``, ``csv_rows``); a format says which shape of row its encoder
takes (``records``: dicts keyed by field name, else tuples in field order;
NDJSON's rows come already written as lines, ``ndjson_option``), so
``fastpath`` builds exactly that shape and nothing is converted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, get_args

from django.db import models
from django.http import StreamingHttpResponse

from streams.exports import csv_rows, ndjson
from streams.http.responses import CSVResponse, NDJSONResponse

ExportFormat = Literal["ndjson", "csv"]

RowEncoder = Callable[[Iterable[Any]], bytes]
"""Encodes a batch of converted rows (dicts or tuples, see ``ExportFormatSpec.records``)."""


def no_header(fields: Sequence[str]) -> bytes:
    return b""


def ndjson_encoder(model_fields: Sequence[models.Field[Any, Any]]) -> RowEncoder:
    """The rows come as lines: the row function writes each (``ndjson_option``)."""
    return ndjson.join_lines


def csv_encoder(model_fields: Sequence[models.Field[Any, Any]]) -> RowEncoder:
    """JSON fields become JSON text in their cell; everything else a plain cell."""
    cells: list[csv_rows.Cell] = [
        csv_rows.json_cell if isinstance(field, models.JSONField) else csv_rows.plain_cell
        for field in model_fields
    ]
    return partial(csv_rows.encode_rows, cells)


@dataclass(frozen=True, slots=True)
class ExportFormatSpec:
    """One export format: what its bytes are called, start with and are made by."""

    name: ExportFormat
    label: str
    content_type: str
    extension: str
    records: bool
    header: Callable[[Sequence[str]], bytes]
    encoder: Callable[[Sequence[models.Field[Any, Any]]], RowEncoder]
    response_class: type[StreamingHttpResponse]
    # For NDJSON: the row function writes each record as a line with these
    # orjson options (``fastpath.compile_rows``), and the encoder joins them.
    ndjson_option: int | None = None


FORMATS: Mapping[ExportFormat, ExportFormatSpec] = MappingProxyType(
    {
        "ndjson": ExportFormatSpec(
            name="ndjson",
            label="NDJSON",
            content_type=NDJSONResponse.content_type_default,
            extension="ndjson",
            records=True,
            header=no_header,
            encoder=ndjson_encoder,
            response_class=NDJSONResponse,
            ndjson_option=ndjson.OPTIONS,
        ),
        "csv": ExportFormatSpec(
            name="csv",
            label="CSV",
            content_type=CSVResponse.content_type_default,
            extension="csv",
            records=False,
            header=csv_rows.encode_header,
            encoder=csv_encoder,
            response_class=CSVResponse,
        ),
    }
)
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


def get_format(name: str) -> ExportFormatSpec:
    """The format called ``name`` (exactly, lower case); ``LookupError`` for any other."""
    try:
        return FORMATS[name]  # type: ignore[index]
    except KeyError:
        raise LookupError(
            f"{name!r} is no export format; use one of {', '.join(EXPORT_FORMATS)}."
        ) from None


def format_for_suffix(suffix: str) -> ExportFormatSpec | None:
    """The format whose file extension is ``suffix`` (without the dot), if any."""
    for spec in FORMATS.values():
        if spec.extension == suffix:
            return spec
    return None
