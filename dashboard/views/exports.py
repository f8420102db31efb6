"""Export job pages (placeholder, being built)."""

from django.http import Http404, HttpRequest, HttpResponse


def job_list(request: HttpRequest) -> HttpResponse:
    raise Http404


def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404


def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404


def job_download(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404
