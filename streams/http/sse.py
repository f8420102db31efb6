"""Server-Sent Events frames, encoded exactly as the WHATWG HTML standard parses them.

The encoder is a pure function from a message to bytes; the response
lifecycle lives in ``streams.http.responses``. Choices:

* ``data`` is split on every line break the parser recognises (``\\r\\n``,
  lone ``\\r`` and ``\\n``; not ``str.splitlines``, which also splits on
  ``\\x0b``, ``\\u2028`` and friends that the parser keeps), and each piece
  becomes its own ``data:`` line, so the parser rejoins them with ``\\n``.
* A single space always follows the colon: the parser drops exactly one,
  so a value that itself starts with a space survives.
* ``id`` and ``event`` cannot carry line breaks, and the parser ignores an
  ``id`` that contains NUL: both are programmer errors and raise.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\0]")


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: ``data`` with an optional name, id and retry hint."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line: ignored by parsers, keeps proxies and the connection awake."""

    text: str = ""


Message = Event | Comment


def _field(name: str, value: str) -> str:
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return f"{name}: {value}\n"


_CACHED_DATA_MAX = 64 * 1024


def encode_event(event: Event) -> bytes:
    """One event's frame; the same event sent to many clients is framed once.

    A log batch fans out to every subscriber as equal ``Event`` objects
    sharing one ``data`` string (whose hash Python caches), so the cache
    hit costs a hash and an identity check instead of a split and an encode
    per client. Only small frames are kept, a few of them (at most 1 MiB):
    a large burst's frames are not worth holding after they are sent.
    """
    if len(event.data) <= _CACHED_DATA_MAX:
        return _encode_event_cached(event)
    return _encode_event(event)


@functools.lru_cache(maxsize=16)
def _encode_event_cached(event: Event) -> bytes:
    return _encode_event(event)


def _encode_event(event: Event) -> bytes:
    parts: list[str] = []
    if event.id is not None:
        parts.append(_field("id", event.id))
    if event.event is not None:
        parts.append(_field("event", event.event))
    if event.retry is not None:
        if event.retry < 0:
            raise ValueError(f"SSE retry must be a non-negative integer: {event.retry!r}")
        parts.append(f"retry: {int(event.retry)}\n")
    parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(event.data))
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(comment: Comment) -> bytes:
    return (
        "".join(f": {line}\n" for line in _LINE_BREAK.split(comment.text)).encode("utf-8") + b"\n"
    )


def encode(message: Message) -> bytes:
    """Encode one message as a complete frame (terminated by a blank line)."""
    if isinstance(message, Comment):
        return encode_comment(message)
    return encode_event(message)


#: The comment every stream sends while idle (keeps proxies and the browser from timing out).
HEARTBEAT: Final = Comment("heartbeat")
