"""Log pages (placeholder, being built)."""

from django.http import Http404, HttpRequest, HttpResponse


def overview(request: HttpRequest) -> HttpResponse:
    raise Http404


def log_index(request: HttpRequest) -> HttpResponse:
    raise Http404


def log_page(request: HttpRequest, name: str) -> HttpResponse:
    raise Http404


def log_download(request: HttpRequest, name: str) -> HttpResponse:
    raise Http404
