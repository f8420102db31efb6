"""The Redis source: a ``LogSource`` (``streams.logs.sources``) over one Redis stream.

``STREAMBOARD_LOGS`` names it by scheme: ``web=redis:web`` follows the stream
``streamboard:log:web`` at ``REDIS_URL``, which ``manage.py ship_log web
PATH`` feeds from any number of hosts. Thin like the file source: the
reader (``streams.logs.redis.reader``) does the work, shared by every client
of the stream in this process; this class is the name, the cursor (an
entry id), a subscription, a summary and the download (the retained lines
as text, ``<host> <line>`` per line, oldest first).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import redis
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from redis.asyncio import Redis as AsyncRedis

from streams import conf
from streams.http.responses import TextStreamResponse
from streams.logs.lines import LogCursor
from streams.logs.redis.cursor import CURSOR_SYNTAX, EntryId
from streams.logs.redis.reader import (
    READ_COUNT,
    REDIS_ERRORS,
    RedisSubscription,
    get_reader,
    running_reader,
)
from streams.logs.redis.stream import RawEntry, connect, decode_entry, raw_entries, stream_key
from streams.logs.sources import SourceSummary

#: A stream name: what ``ship_log NAME`` and ``redis:NAME`` share.
STREAM_NAME_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,100}")
#: How long a page's summary waits for Redis (it is read in a request's thread).
SUMMARY_TIMEOUT: Final = 1.0


@dataclass(frozen=True)
class RedisSource:
    """The stream ``stream`` at ``url``, under the configured ``name``."""

    name: str
    stream: str
    url: str
    cursor_syntax: str = CURSOR_SYNTAX

    def parse_cursor(self, text: str) -> EntryId:
        return EntryId.parse(text)

    def subscribe(self) -> RedisSubscription:
        return get_reader(self.url, self.stream).subscribe()

    async def context_start(self, cursor: LogCursor, before: int) -> LogCursor:
        """The entry ``before`` entries ahead of ``cursor``'s (a permalink's context).

        One ``XREVRANGE <cursor> - COUNT before+2``: the last entry it gives
        is the one to resume after, so the page opens with ``before`` lines,
        the permalink's line, then live ones. With fewer retained, ``0-0``:
        every retained entry (with the trimmed notice if older ones are
        gone). Redis not answering: the cursor itself (no context, no error).
        """
        if not isinstance(cursor, EntryId) or before <= 0:
            return cursor
        client = connect(self.url)
        try:
            raw = raw_entries(
                await client.xrevrange(stream_key(self.stream), str(cursor), "-", count=before + 2)
            )
        except REDIS_ERRORS:
            return cursor
        finally:
            await client.aclose()
        if len(raw) < before + 2:
            return EntryId.origin()
        return EntryId.parse(raw[-1][0])

    async def level_minutes(self, since: float, end: LogCursor) -> dict[int, Counter[str]]:
        """No past for the chart: its counts start with the lines this process receives."""
        return {}

    def summary(self) -> SourceSummary:
        """Whether the stream has entries, and the memory Redis holds for it.

        On the event loop (the overview) this is what the running reader
        knows, never a blocking call; off it (a page's thread), one short
        round trip.
        """
        reader = running_reader(self.url, self.stream)
        if reader is not None:
            return SourceSummary(
                exists=reader.exists or not reader.settled.is_set(),
                clients=reader.fanout.subscriber_count,
                pushed=reader.fanout.direct_count,
            )
        try:
            with redis.Redis.from_url(
                self.url, socket_timeout=SUMMARY_TIMEOUT, socket_connect_timeout=SUMMARY_TIMEOUT
            ) as client:
                key = stream_key(self.stream)
                length = int(client.xlen(key))
                size = client.memory_usage(key) if length else 0
        except (redis.RedisError, OSError):
            return SourceSummary(exists=False)
        return SourceSummary(exists=length > 0, size=int(size or 0))

    async def download(self, request: HttpRequest) -> HttpResponseBase:
        """The retained lines as text; a 503 before the first byte if Redis does not answer."""
        disposition = f'attachment; filename="{self.name}.log"'
        if request.method == "HEAD":
            head = HttpResponse(content_type="text/plain; charset=utf-8")
            head["Content-Disposition"] = disposition
            return head
        client = connect(self.url)
        key = stream_key(self.stream)
        try:
            first = raw_entries(await client.xrange(key, "-", "+", count=READ_COUNT))
        except REDIS_ERRORS:
            await client.aclose()
            return HttpResponse(
                "Redis does not answer; try again.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response = TextStreamResponse(_retained_text(client, key, first))
        response["Content-Disposition"] = disposition
        return response


async def _retained_text(
    client: AsyncRedis, key: str, page: list[RawEntry]
) -> AsyncIterator[bytes]:
    """Every retained ``line`` and ``gap`` entry as ``<host> <text>\\n``, in pages."""
    try:
        while page:
            chunk = []
            for entry_id, fields in page:
                entry = decode_entry(entry_id, fields)
                if entry.kind != "notice":
                    prefix = f"{entry.host} " if entry.host else ""
                    chunk.append(f"{prefix}{entry.text}\n")
            yield "".join(chunk).encode()
            if len(page) < READ_COUNT:
                return
            low = EntryId.parse(page[-1][0]).after
            page = raw_entries(await client.xrange(key, low, "+", count=READ_COUNT))
    finally:
        await client.aclose()


def from_location(name: str, location: str) -> RedisSource:
    """The ``SourceFactory`` of Redis streams: ``location`` is the stream's name."""
    if not STREAM_NAME_RE.fullmatch(location):
        raise ImproperlyConfigured(
            f"log source {name!r}: redis:{location} is not a stream name "
            "(letters, digits, - and _)."
        )
    url = conf.redis_url()
    if not url:
        raise ImproperlyConfigured(f"log source {name!r} (redis:{location}) needs REDIS_URL.")
    return RedisSource(name, location, url)
