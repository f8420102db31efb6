"""Log stream views (placeholder, being built)."""

from django.http import Http404, HttpRequest, HttpResponse


async def log_stream(request: HttpRequest, name: str) -> HttpResponse:
    raise Http404


log_text_stream = log_stream


async def overview_stream(request: HttpRequest) -> HttpResponse:
    raise Http404
