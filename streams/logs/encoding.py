"""Encoders for log events: HTML fragments or JSON in SSE events, or plain text.

Pure functions from a ``streams.logs.follow`` event to an ``Event`` (or to
bytes for ``text/plain``); the views only choose one. An unfiltered client's
lines are the tailer's shared batches, so their fragment or JSON is computed
once per batch and reused by every such client; several batches coalesced
into one event are joined (the fragment of a run of lines is the
concatenation of its batches' fragments).

Fragments (``templates/streams/``), with their context:

* ``fragments.html#log_lines``: ``entries``, a list of ``LogEntry`` (``level``,
  ``lines``: ``LogLine`` with ``text``, ``level``, ``continuation``, ``json``,
  ``cursor``).
* ``fragments.html#log_skipped``: ``count``.
* ``fragments.html#log_notice``: ``notice``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Literal

import orjson
from django.template.loader import render_to_string

from streams.http.sse import HEARTBEAT, Event, Message
from streams.logs.follow import IdleEvent, LinesEvent, LogEvent, NoticeEvent, SkippedEvent
from streams.logs.lines import LogLine, group_entries

Format = Literal["html", "json"]
FORMATS: Final[tuple[Format, ...]] = ("html", "json")

LINES_TEMPLATE: Final = "streams/fragments.html#log_lines"
SKIPPED_TEMPLATE: Final = "streams/fragments.html#log_skipped"
NOTICE_TEMPLATE: Final = "streams/fragments.html#log_notice"


def render_lines(lines: tuple[LogLine, ...] | list[LogLine]) -> str:
    if not lines:
        return ""
    return render_to_string(LINES_TEMPLATE, {"entries": group_entries(lines)}).strip()


def json_items(lines: tuple[LogLine, ...] | list[LogLine]) -> str:
    """The lines as JSON objects separated by commas (the inside of the ``lines`` array)."""
    return orjson.dumps([line.as_dict() for line in lines]).decode()[1:-1]


def lines_data(event: LinesEvent, fmt: Format) -> str:
    if fmt == "html":
        if event.batches is not None:
            return "".join(batch.encoded("html", render_lines) for batch in event.batches)
        return render_lines(event.lines)
    if event.batches is not None:
        parts = [batch.encoded("json", json_items) for batch in event.batches]
        items = ",".join(part for part in parts if part)
    else:
        items = json_items(event.lines)
    return '{"lines":[' + items + "]}"


def to_sse(event: LinesEvent | SkippedEvent | NoticeEvent, fmt: Format) -> Event:
    """One log event as one SSE event, its ``id:`` the cursor."""
    cursor = str(event.cursor)
    if isinstance(event, LinesEvent):
        return Event(lines_data(event, fmt), event="lines", id=cursor)
    if isinstance(event, SkippedEvent):
        if fmt == "html":
            data = render_to_string(SKIPPED_TEMPLATE, {"count": event.count}).strip()
        else:
            data = orjson.dumps({"skipped": event.count}).decode()
        return Event(data, event="skipped", id=cursor)
    if fmt == "html":
        data = render_to_string(NOTICE_TEMPLATE, {"notice": event.text}).strip()
    else:
        data = orjson.dumps({"notice": event.text}).decode()
    return Event(data, event="notice", id=cursor)


async def sse_events(events: AsyncIterator[LogEvent], fmt: Format) -> AsyncIterator[Message]:
    """SSE messages; idleness becomes a heartbeat comment."""
    async for event in events:
        yield HEARTBEAT if isinstance(event, IdleEvent) else to_sse(event, fmt)


def to_text(event: LogEvent) -> bytes:
    """Plain text: lines as written; skipped and notice events as bracketed lines.

    Idleness sends nothing: plain text has no comment syntax.
    """
    if isinstance(event, IdleEvent):
        return b""
    if isinstance(event, LinesEvent):
        return "".join(line.text + "\n" for line in event.lines).encode()
    if isinstance(event, SkippedEvent):
        return f"[{event.count} lines skipped]\n".encode()
    return f"[{event.text}]\n".encode()


async def text_chunks(events: AsyncIterator[LogEvent]) -> AsyncIterator[bytes]:
    """Plain text; the first chunk goes out even when empty, so the server sends the head."""
    first = True
    async for event in events:
        chunk = to_text(event)
        if chunk or first:
            yield chunk
        first = False
