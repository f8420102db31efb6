"""Streamed exports: ``GET /exports/<app_label>.<model_name>.<ndjson|csv>``.

Thin wiring, in order: method guard, staff (403), exportable model (404),
the model's view permission (403), query form (400), then the producer and
the response. Everything that can answer 4xx does so before the first byte;
nothing is counted up front (a stream needs no total).

A failure while streaming (a row that cannot be encoded, the database gone)
propagates out of the body iterator, and the server aborts the connection:
the client sees a broken transfer, never a clean but short file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.contrib.auth import get_permission_codename
from django.db import models
from django.http import (
    Http404,
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from streams.exports.producer import (
    EXPORT_FORMATS,
    Exportable,
    ExportChunk,
    ExportFormat,
    aiter_export,
    get_exportable,
)
from streams.exports.query import ExportQueryForm
from streams.http.access import stream_staff_required
from streams.http.responses import CSVResponse, NDJSONResponse


def view_permission(exportable: Exportable) -> str:
    opts = exportable.model._meta
    return f"{opts.app_label}.{get_permission_codename('view', opts)}"


async def chunk_bytes(chunks: AsyncIterator[ExportChunk]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.data


@require_GET
@stream_staff_required
async def export_stream(request: HttpRequest, label: str, fmt: str) -> HttpResponseBase:
    if fmt not in EXPORT_FORMATS:
        raise Http404(f"Exports come as {' or '.join(EXPORT_FORMATS)}.")
    try:
        exportable = get_exportable(label)
    except LookupError:
        raise Http404(f"{label} is not exportable.") from None
    user = await request.auser()
    if not await user.ahas_perm(view_permission(exportable)):
        return HttpResponseForbidden(
            f"You may not view {exportable.label}.\n", content_type="text/plain"
        )
    form = ExportQueryForm(exportable, request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.export_query()
    export_format: ExportFormat = fmt  # narrowed by the check above
    queryset: models.QuerySet[Any] = query.apply(exportable.model._default_manager.all())
    body = chunk_bytes(aiter_export(queryset, query.fields, export_format, after=query.after))
    response_class = NDJSONResponse if export_format == "ndjson" else CSVResponse
    return response_class(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{exportable.filename(export_format)}"'
        },
    )
