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


def export_dir() -> Path:
    """Where background exports write their files (temp name first, renamed when complete)."""
    return Path(settings.STREAMBOARD_EXPORT_DIR)


def export_chunk_size() -> int:
    return int(getattr(settings, "STREAMBOARD_EXPORT_CHUNK_SIZE", 2000))


def export_chunk_delay() -> float:
    """A pause after each chunk of a background export (0: none); lets a demo or test watch."""
    return float(getattr(settings, "STREAMBOARD_EXPORT_CHUNK_DELAY", 0.0))


def export_progress_seconds() -> float:
    """How often a running export saves and publishes its progress (at most)."""
    return float(getattr(settings, "STREAMBOARD_EXPORT_PROGRESS_SECONDS", 0.1))


def export_poll_seconds() -> float:
    """How often a server reads job rows when the channel layer cannot tell it."""
    return float(getattr(settings, "STREAMBOARD_EXPORT_POLL_SECONDS", 0.2))


def export_stale_seconds() -> float:
    """A running job whose heartbeat is older than this has lost its worker."""
    return float(getattr(settings, "STREAMBOARD_EXPORT_STALE_SECONDS", 60.0))


def redis_url() -> str:
    """``REDIS_URL``: the channel layer's Redis and the ``redis:`` log sources' (empty: none)."""
    return str(getattr(settings, "REDIS_URL", "") or "")


def redis_log_maxlen() -> int:
    """How many entries a ``redis:`` log stream keeps (``XADD``/``XTRIM MAXLEN ~``; 0: no bound)."""
    return int(getattr(settings, "STREAMBOARD_REDIS_LOG_MAXLEN", 100_000))


def redis_log_max_age() -> float:
    """How old (seconds) a ``redis:`` log stream's entries may grow (``XTRIM MINID ~``; 0: any)."""
    return float(getattr(settings, "STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS", 0.0))
