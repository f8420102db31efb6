"""Streamboard's URLs: the public contract is documented in the README."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Pages: /, /logs/..., /exports/...
    path("", include("dashboard.views.urls")),
    # Streams: /streams/... and the streamed exports /exports/<label>.<format>
    path("", include("streams.urls")),
]
