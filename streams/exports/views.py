"""Streamed exports: ``GET /exports/<app_label>.<model_name>.<ndjson|csv>``.

A guard ladder, one rung per outcome: method (405), staff (403), exportable
model and known format (404: both name the resource), the model's view
permission (403), query form (400), then the producer, the encoder (chosen by
the format table) and the response. Everything that can answer 4xx does so
before the first byte; nothing is counted up front (a stream needs no total).

A failure while streaming (a row that cannot be encoded, the database gone)
propagates out of the body iterator, and the server aborts the connection:
the client sees a broken transfer, never a clean but short file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.contrib.auth import get_permission_codename
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBadRequest, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from streams.exports.allow_list import Exportable, get_exportable
from streams.exports.formats import get_format
from streams.exports.producer import ExportChunk, aiter_export
from streams.exports.query import ExportQueryForm
from streams.http.access import stream_staff_required


def view_permission(exportable: Exportable) -> str:
    opts = exportable.model._meta
    return f"{opts.app_label}.{get_permission_codename('view', opts)}"


async def chunk_bytes(chunks: AsyncIterator[ExportChunk]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.data


@require_GET
@stream_staff_required
async def export_stream(request: HttpRequest, label: str, fmt: str) -> HttpResponseBase:
    try:
        exportable = get_exportable(label)
        export_format = get_format(fmt)
    except LookupError as error:
        raise Http404(str(error)) from None
    user = await request.auser()
    if not await user.ahas_perm(view_permission(exportable)):
        return HttpResponseForbidden(
            f"You may not view {exportable.label}.\n", content_type="text/plain"
        )
    form = ExportQueryForm(exportable, request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    query = form.export_query()
    queryset: models.QuerySet[Any] = query.apply(exportable.model._default_manager.all())
    chunks = aiter_export(queryset, query.fields, export_format.name, after=query.after)
    disposition = f'attachment; filename="{exportable.filename(export_format)}"'
    return export_format.response_class(
        chunk_bytes(chunks), headers={"Content-Disposition": disposition}
    )
