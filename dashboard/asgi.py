"""ASGI entry point: Django's HTTP handler (all streams are plain HTTP + SSE).

Static files (the stylesheet, htmx and its SSE extension) are served by
staticfiles' ASGI handler, the one ``runserver`` uses, so ``manage.py serve``
works from a fresh clone without ``collectstatic`` or a front proxy. Behind a
proxy that serves ``STATIC_ROOT`` itself, those requests never reach it.
The handler is Django's, sending whole body parts under our own server
(``streams.http.handler``).
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from streams.http.handler import get_streaming_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = ASGIStaticFilesHandler(get_streaming_asgi_application())
