"""Streamboard's settings as the app sees them, read from ``django.conf.settings``.

``dashboard.settings`` parses the environment once; this module is the only
place the app looks them up, so tests can override them with
``override_settings`` and everything follows.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def log_sources() -> dict[str, Path]:
    """The named log sources; a request picks one by name, never by path."""
    sources: dict[str, Path] = settings.STREAMBOARD_LOGS
    return sources


def heartbeat_seconds() -> float:
    return float(settings.STREAMBOARD_HEARTBEAT_SECONDS)


def queue_size() -> int:
    return int(settings.STREAMBOARD_QUEUE_SIZE)


def export_allow_list() -> dict[str, list[str]]:
    """Model label -> the fields that may be exported; unlisted models are not exportable."""
    allow_list: dict[str, list[str]] = getattr(settings, "STREAMBOARD_EXPORTS", {})
    return allow_list
