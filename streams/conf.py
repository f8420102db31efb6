"""Streamboard's settings as the app sees them, read from ``django.conf.settings``.

``dashboard.settings`` parses the environment once; this module is the only
place the app looks them up, so tests can override them with
``override_settings`` and everything follows.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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


#: The built-in redaction kinds applied when ``STREAMBOARD_REDACT`` is not set.
DEFAULT_REDACT: tuple[str, ...] = ("email", "bearer", "api_key", "card")

#: A redaction rule as configured: a built-in kind's name, or a custom pattern
#: ``{"name": ..., "pattern": ..., "replacement": ...}`` (``replacement`` optional).
RedactSetting = str | dict[str, str]


def redact_rules() -> tuple[RedactSetting, ...]:
    """The configured redaction rules (``STREAMBOARD_REDACT``), checked for shape.

    Kinds and patterns are compiled (and refused, listing the allowed kinds)
    by ``streams.logs.redaction``; an empty list turns redaction off.
    """
    raw = getattr(settings, "STREAMBOARD_REDACT", DEFAULT_REDACT)
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise ImproperlyConfigured(
            f"STREAMBOARD_REDACT must be a list of kinds and patterns, not {raw!r}."
        )
    rules: list[RedactSetting] = []
    for item in raw:
        if isinstance(item, str):
            rules.append(item)
        elif (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("pattern"), str)
            and all(isinstance(v, str) for v in item.values())
            and set(item) <= {"name", "pattern", "replacement"}
        ):
            rules.append(dict(item))
        else:
            raise ImproperlyConfigured(
                "STREAMBOARD_REDACT: each rule is a kind's name or "
                f'{{"name": ..., "pattern": ..., "replacement": ...}}, not {item!r}.'
            )
    return tuple(rules)
