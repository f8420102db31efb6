"""ASGI entry point: Django's HTTP handler (all streams are plain HTTP + SSE).

Static files (the stylesheet, htmx and its SSE extension) are served by
staticfiles' ASGI handler, the one ``runserver`` uses, so ``manage.py serve``
works from a fresh clone without ``collectstatic`` or a front proxy. Behind a
proxy that serves ``STATIC_ROOT`` itself, those requests never reach it.
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
