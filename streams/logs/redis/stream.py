"""What the shipper and the source share: key names, the entry format, the client.

A source ``NAME`` is one Redis stream, ``streamboard:log:NAME``; every host
shipping to it appends there, so the stream's order (entry ids, from the
Redis server's clock) is the merged, time-ordered view. Beside it a hash,
``streamboard:log:NAME:shipped``, holds each host's position: the shipper's
batch number and the file cursor (``"<inode>:<offset>"``) after its last
shipped line, written in the same atomic step as the entries (see
``streams.logs.redis.shipper``), so a restarted shipper resumes from Redis
alone.

An entry is a flat field map: ``host`` (the shipper's label), ``pos`` (the
file cursor just after the line) and exactly one of

* ``line``: a line as written (decoded as UTF-8, undecodable bytes replaced);
* ``notice``: something the shipper's reader noticed (rotation, truncation);
* ``gap``: lines that could not be shipped (a file rotated away and deleted
  before the shipper reached its end), saying how much was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

KEY_PREFIX: Final = "streamboard:log:"
SHIPPED_SUFFIX: Final = ":shipped"

EntryKind = Literal["line", "notice", "gap"]
KINDS: Final[tuple[EntryKind, ...]] = ("line", "notice", "gap")


def stream_key(name: str) -> str:
    return f"{KEY_PREFIX}{name}"


def shipped_key(name: str) -> str:
    """The hash of each host's last shipped position (batch number and file cursor)."""
    return f"{KEY_PREFIX}{name}{SHIPPED_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as the source reads it."""

    id: str
    host: str
    kind: EntryKind
    text: str
    pos: str


def decode_entry(entry_id: str, fields: dict[str, str]) -> Entry:
    """An entry from ``XRANGE``/``XREAD`` (fields decoded); unknown shapes become notices."""
    host = fields.get("host", "")
    pos = fields.get("pos", "")
    for kind in KINDS:
        text = fields.get(kind)
        if text is not None:
            return Entry(entry_id, host, kind, text, pos)
    return Entry(entry_id, host, "notice", "An entry without a line was skipped.", pos)


def connect(url: str, *, socket_timeout: float | None = 10.0) -> Redis:
    """An asyncio client for ``url`` that fails fast: callers retry with their own backoff.

    redis-py's default retries with up to 10 s of backoff inside a command;
    the shipper and the reader each have a loop that knows what to do
    meanwhile (keep the file as the buffer, tell the clients), so a failure
    must reach them at once.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5.0,
        retry=Retry(NoBackoff(), 0),
    )


#: An entry as redis-py returns it with ``decode_responses``: its id and its fields.
RawEntry = tuple[str, dict[str, str]]


def raw_entries(reply: object) -> list[RawEntry]:
    """``XRANGE``/``XREVRANGE``'s reply, typed (redis-py's stubs cover every protocol)."""
    return cast(list[RawEntry], reply or [])


def xread_entries(reply: object) -> list[RawEntry]:
    """The entries of a one-stream ``XREAD`` reply (RESP2: ``[[key, entries]]``)."""
    if not reply:
        return []
    streams = cast(list[tuple[str, list[RawEntry]]], reply)
    return streams[0][1]
