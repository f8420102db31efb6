"""Streamboard's settings as the app sees them, with every ``STREAMBOARD_*`` default.

This module is the only reader of ``settings.STREAMBOARD_*`` and the only
place a default is written: a setting left unset means the value below.
``dashboard.settings`` parses the environment and takes its defaults from
here (``DEFAULTS``), so the README's table, the site and the app cannot
disagree; tests override settings with ``override_settings`` and everything
follows, because nothing caches a value.

Two defaults depend on the site's layout and are derived, not constants:
``STREAMBOARD_EXPORT_DIR`` is ``MEDIA_ROOT/exports``, and ``STREAMBOARD_LOGS``
is the demo log alone (``{"demo": STREAMBOARD_DEMO_LOG}``) when the site
names one, else no source at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "STREAMBOARD_HEARTBEAT_SECONDS": 15.0,
        "STREAMBOARD_QUEUE_SIZE": 1000,
        "STREAMBOARD_QUEUE_BYTES": 128 * 1024,
        "STREAMBOARD_PUSH": True,
        "STREAMBOARD_EXPORTS": {},
        "STREAMBOARD_EXPORT_CHUNK_SIZE": 2000,
        "STREAMBOARD_EXPORT_CHUNK_DELAY": 0.0,
        "STREAMBOARD_EXPORT_PROGRESS_SECONDS": 0.1,
        "STREAMBOARD_EXPORT_POLL_SECONDS": 0.2,
        "STREAMBOARD_EXPORT_STALE_SECONDS": 60.0,
        # None: a quarter of STREAMBOARD_EXPORT_STALE_SECONDS.
        "STREAMBOARD_JOB_REAP_SECONDS": None,
        "STREAMBOARD_JOB_RETENTION_DAYS": 7.0,
        "STREAMBOARD_JOB_PRUNE_SECONDS": 3600.0,
        "STREAMBOARD_JOB_CHUNK_DELAY": 0.0,
        "STREAMBOARD_REDIS_LOG_MAXLEN": 100_000,
        "STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS": 0.0,
        "STREAMBOARD_REDACT": ("email", "bearer", "api_key", "card"),
        # Source name -> glob patterns of its rotated files' names; unlisted: the built-in ones.
        "STREAMBOARD_LOG_ROTATION": {},
    }
)
EXPORT_SUBDIR = "exports"
DEMO_SOURCE = "demo"


def _get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def demo_log() -> Path | None:
    """The file ``manage.py demo_log`` writes (a site setting; no demo when unset)."""
    path = getattr(settings, "STREAMBOARD_DEMO_LOG", None)
    return Path(path) if path else None


def log_sources() -> dict[str, Path]:
    """The named log sources; a request picks one by name, never by path."""
    sources: dict[str, Path] | None = getattr(settings, "STREAMBOARD_LOGS", None)
    if sources is not None:
        return sources
    demo = demo_log()
    return {DEMO_SOURCE: demo} if demo is not None else {}


def heartbeat_seconds() -> float:
    return float(_get("STREAMBOARD_HEARTBEAT_SECONDS"))


def queue_size() -> int:
    return int(_get("STREAMBOARD_QUEUE_SIZE"))


def queue_bytes() -> int:
    """A client's queue bound in bytes of line text (with ``queue_size``, whichever comes first).

    Small enough that a client reading slower than the log is written
    overflows within seconds and sees the present (docs/benchmarks.md,
    "Slow clients"), large enough to hold a tailer's read of a burst.
    """
    return int(_get("STREAMBOARD_QUEUE_BYTES"))


def push_delivery() -> bool:
    """Whether ``manage.py serve`` writes live log frames straight to sockets (``http.push``).

    Off, every stream takes the ordinary ASGI path; the bytes are the same.
    """
    return bool(_get("STREAMBOARD_PUSH"))


def export_allow_list() -> dict[str, list[str]]:
    """Model label -> the fields that may be exported; unlisted models are not exportable."""
    allow_list: dict[str, list[str]] = _get("STREAMBOARD_EXPORTS")
    return allow_list


def export_dir() -> Path:
    """Where background exports write their files (temp name first, renamed when complete)."""
    path = getattr(settings, "STREAMBOARD_EXPORT_DIR", None)
    return Path(path) if path else Path(settings.MEDIA_ROOT) / EXPORT_SUBDIR


def export_chunk_size() -> int:
    """Rows per chunk (one short keyset query) for every export: view, CLI and task."""
    return int(_get("STREAMBOARD_EXPORT_CHUNK_SIZE"))


def export_chunk_delay() -> float:
    """A pause after each chunk of a background export (0: none); lets a demo or test watch."""
    return float(_get("STREAMBOARD_EXPORT_CHUNK_DELAY"))


def export_progress_seconds() -> float:
    """How often a running export saves and publishes its progress (at most)."""
    return float(_get("STREAMBOARD_EXPORT_PROGRESS_SECONDS"))


def export_poll_seconds() -> float:
    """How often a server reads job rows when the channel layer cannot tell it."""
    return float(_get("STREAMBOARD_EXPORT_POLL_SECONDS"))


def export_stale_seconds() -> float:
    """A running job whose heartbeat is older than this has lost its worker."""
    return float(_get("STREAMBOARD_EXPORT_STALE_SECONDS"))


def project_dir() -> Path:
    """The directory holding ``manage.py``: where the supervisor starts its children."""
    return Path(settings.BASE_DIR)


def database_is_in_memory() -> bool:
    """An in-memory SQLite database: private to each process, so it cannot be shared."""
    database = settings.DATABASES["default"]
    name = str(database.get("NAME") or "")
    return database["ENGINE"] == "django.db.backends.sqlite3" and (
        name in ("", ":memory:") or "mode=memory" in name
    )


def channel_layer_backend() -> str:
    """The channel layer's class name, e.g. ``InMemoryChannelLayer`` (for start-up messages)."""
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    return backend.rsplit(".", 1)[-1]


def job_reap_seconds() -> float:
    """How often every worker reaps stale jobs (default: a quarter of the stale threshold)."""
    configured = _get("STREAMBOARD_JOB_REAP_SECONDS")
    if configured is not None:
        return float(configured)
    return max(export_stale_seconds() / 4, 0.05)


def job_retention_days() -> float:
    """Finished jobs (and their files) older than this are pruned."""
    return float(_get("STREAMBOARD_JOB_RETENTION_DAYS"))


def job_prune_seconds() -> float:
    """How often every worker prunes finished jobs past the retention."""
    return float(_get("STREAMBOARD_JOB_PRUNE_SECONDS"))


def job_chunk_delay() -> float:
    """A pause after each chunk of the demo's tracked tasks (0: none); lets a demo or test watch."""
    return float(_get("STREAMBOARD_JOB_CHUNK_DELAY"))


def redis_url() -> str:
    """``REDIS_URL``: the channel layer's Redis and the ``redis:`` log sources' (empty: none)."""
    return str(getattr(settings, "REDIS_URL", "") or "")


def redis_log_maxlen() -> int:
    """How many entries a ``redis:`` log stream keeps (``XADD``/``XTRIM MAXLEN ~``; 0: no bound)."""
    return int(_get("STREAMBOARD_REDIS_LOG_MAXLEN"))


def redis_log_max_age() -> float:
    """How old (seconds) a ``redis:`` log stream's entries may grow (``XTRIM MINID ~``; 0: any)."""
    return float(_get("STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS"))


def check_log_rotation(raw: object, sources: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """``STREAMBOARD_LOG_ROTATION`` checked against the configured ``sources``.

    Each key is a file source's name, each value a non-empty list of glob
    patterns (``fnmatch``) on file names in that source's directory: a
    pattern holds no ``/``, so a source never reaches outside its directory.
    A ``redis:`` source has no rotated files. Called by ``dashboard.settings``
    at start-up and by ``log_rotation`` on every read (settings set in code).
    """
    name = "STREAMBOARD_LOG_ROTATION"
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{name} must map source names to glob patterns, not {raw!r}.")
    rotation: dict[str, tuple[str, ...]] = {}
    for source, patterns in raw.items():
        if source not in sources:
            known = ", ".join(sorted(map(str, sources))) or "none"
            raise ImproperlyConfigured(
                f"{name}: {source!r} is not a log source (STREAMBOARD_LOGS names: {known})."
            )
        scheme, colon, _ = str(sources[source]).partition(":")
        if colon and scheme.isidentifier():
            raise ImproperlyConfigured(f"{name}: {source!r} is a {scheme}: source, not a file.")
        if (
            isinstance(patterns, str)
            or not isinstance(patterns, list | tuple)
            or not patterns
            or not all(isinstance(p, str) and p.strip() and "/" not in p for p in patterns)
        ):
            raise ImproperlyConfigured(
                f"{name}[{source!r}]: a non-empty list of glob patterns on file names "
                f"(no '/'), not {patterns!r}."
            )
        rotation[str(source)] = tuple(p.strip() for p in patterns)
    return rotation


def log_rotation() -> dict[str, tuple[str, ...]]:
    """Source name -> glob patterns naming its rotated files (``STREAMBOARD_LOG_ROTATION``).

    A source listed here has exactly these rotated siblings (newest first by
    modification time); one not listed has the built-in patterns
    (``streams.logs.history.DEFAULT_ROTATED``).
    """
    return check_log_rotation(_get("STREAMBOARD_LOG_ROTATION"), log_sources())


#: The built-in redaction kinds applied when ``STREAMBOARD_REDACT`` is not set.
DEFAULT_REDACT: tuple[str, ...] = DEFAULTS["STREAMBOARD_REDACT"]

#: A redaction rule as configured: a built-in kind's name, or a custom pattern
#: ``{"name": ..., "pattern": ..., "replacement": ...}`` (``replacement`` optional).
RedactSetting = str | dict[str, str]


def redact_rules() -> tuple[RedactSetting, ...]:
    """The configured redaction rules (``STREAMBOARD_REDACT``), checked for shape.

    Kinds and patterns are compiled (and refused, listing the allowed kinds)
    by ``streams.logs.redaction``; an empty list turns redaction off.
    """
    raw = _get("STREAMBOARD_REDACT")
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
