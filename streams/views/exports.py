"""Streamed exports (placeholder, being built)."""

from django.http import Http404, HttpRequest, HttpResponse


async def export_stream(request: HttpRequest, label: str, fmt: str) -> HttpResponse:
    raise Http404
