"""System checks for log sources of other kinds: bad configuration stops start-up.

* ``streams.E020``: a ``redis:`` source while ``REDIS_URL`` is unset.
* ``streams.E021``: ``REDIS_URL`` is not a Redis URL (``redis://``,
  ``rediss://`` or ``unix://``, a numeric port).
* ``streams.E022``: a ``redis:`` location that is not a stream name.
* ``streams.E023``: a ``scheme:`` location whose scheme names no kind of source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps.config import AppConfig
from django.core.checks import CheckMessage, Error, register
from redis.connection import parse_url

from streams import conf
from streams.logs.redis.source import STREAM_NAME_RE
from streams.logs.sources import KINDS, source_kind


@register()
def check_log_source_kinds(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    url = conf.redis_url()
    if url:
        try:
            parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except ValueError as exc:
            errors.append(
                Error(
                    f"REDIS_URL is not a Redis URL: {exc}",
                    hint="e.g. redis://127.0.0.1:6379/0, or rediss://:password@host:6380/0",
                    id="streams.E021",
                )
            )
    for name, location in conf.log_sources().items():
        scheme, rest = source_kind(str(location))
        if scheme not in KINDS:
            errors.append(
                Error(
                    f"STREAMBOARD_LOGS[{name!r}]: no kind of log source for {scheme!r}.",
                    hint=f"Use an absolute path or one of: {', '.join(sorted(KINDS))}.",
                    id="streams.E023",
                )
            )
        elif scheme == "redis":
            if not STREAM_NAME_RE.fullmatch(rest):
                errors.append(
                    Error(
                        f"STREAMBOARD_LOGS[{name!r}]: redis:{rest} is not a stream name.",
                        hint="Letters, digits, - and _, as given to manage.py ship_log NAME.",
                        id="streams.E022",
                    )
                )
            if not url:
                errors.append(
                    Error(
                        f"STREAMBOARD_LOGS[{name!r}] is a redis: source but REDIS_URL is unset.",
                        hint="Set REDIS_URL to the Redis that ship_log writes to.",
                        id="streams.E020",
                    )
                )
    return errors
