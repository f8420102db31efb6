"""Export job progress streams (placeholder, being built)."""

from django.http import Http404, HttpRequest, HttpResponse


async def jobs_stream(request: HttpRequest) -> HttpResponse:
    raise Http404


async def job_stream(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404
