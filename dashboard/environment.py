"""Typed readers for the environment variables Streamboard is configured by.

Settings are read once, here and in ``dashboard.settings``. A bad value stops
start-up with an ``ImproperlyConfigured`` that names the variable, so an
operator never has to guess which of a dozen settings broke.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str, environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(name, default)


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false.")


def env_int(
    name: str, default: int, *, minimum: int = 0, environ: Mapping[str, str] = os.environ
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_float(
    name: str, default: float, *, minimum: float = 0.0, environ: Mapping[str, str] = os.environ
) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_log_sources(raw: str, name: str = "STREAMBOARD_LOGS") -> dict[str, Path]:
    """Parse ``"name=/abs/path.log,other=/var/log/x.log"`` into ``{name: Path}``.

    Names are what requests use (a URL never carries a path), so they must be
    slug-like; paths must be absolute so the server's working directory
    cannot change what is served. A location ``scheme:rest`` (``redis:web``)
    names another kind of source (``streams.logs.sources.KINDS``).
    """
    sources: dict[str, Path] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, path = item.partition("=")
        key, path = key.strip(), path.strip()
        if not sep or not key or not path:
            raise ImproperlyConfigured(f"{name}: {item!r} is not of the form name=/absolute/path.")
        if not key.replace("-", "").replace("_", "").isalnum() or not key.isascii():
            raise ImproperlyConfigured(
                f"{name}: source name {key!r} may contain only letters, digits, - and _."
            )
        scheme, colon, _ = path.partition(":")
        if not os.path.isabs(path) and not (colon and scheme.isidentifier()):
            raise ImproperlyConfigured(
                f"{name}: the path of {key!r} must be absolute, not {path!r}."
            )
        if key in sources:
            raise ImproperlyConfigured(f"{name}: source {key!r} is named twice.")
        sources[key] = Path(path)
    if not sources:
        raise ImproperlyConfigured(f"{name} names no log source.")
    return sources


def parse_log_rotation(raw: str, name: str = "STREAMBOARD_LOG_ROTATION") -> dict[str, list[str]]:
    """Parse ``"app=app-*.log.gz;app-*.log,web=web.log.old"`` into ``{name: [glob, ...]}``.

    Sources are separated by ``,`` as in ``STREAMBOARD_LOGS``, a source's
    patterns by ``;``. Which names are sources, and what a pattern may hold,
    is ``streams.conf.check_log_rotation``'s to say.
    """
    rotation: dict[str, list[str]] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, patterns = item.partition("=")
        key = key.strip()
        globs = [glob.strip() for glob in patterns.split(";") if glob.strip()]
        if not sep or not key or not globs:
            raise ImproperlyConfigured(f"{name}: {item!r} is not of the form name=glob;glob.")
        if key in rotation:
            raise ImproperlyConfigured(f"{name}: source {key!r} is named twice.")
        rotation[key] = globs
    return rotation
