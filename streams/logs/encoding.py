"""Encoders for log events: HTML fragments or JSON in SSE events, or plain text.

Pure functions from a ``streams.logs.follow`` event to ``Event`` objects (or
to bytes for ``text/plain``); the views only choose one. Choices:

* **Encode once**: an unfiltered client's lines are the fan-out's shared
  batches, so their fragment or JSON is computed once per batch and reused
  by every such client; several batches coalesced into one event are joined
  (the fragment of a run of lines is the concatenation of its batches'
  fragments; JSON arrays are joined inside one ``{"lines": [...]}``).
* **Capped events**: no event's data exceeds ``EVENT_DATA_BYTES`` (UTF-8), so
  a burst becomes several events, each sent as soon as the client's writer
  is free, and no client holds a megabyte-sized frame. Each encoded batch is
  a tuple of ``Piece`` objects under the cap (a batch whose encoding is
  larger is split by lines); events are packed from whole pieces. Only a
  single line whose own encoding is larger goes out alone, over the cap.
  Each event's ``id:`` is the cursor after its last line, so a client that
  reconnects between two of them resumes exactly.

Fragments (``templates/streams/``), with their context:

* ``fragments.html#log_lines``: ``entries``, a list of ``LogEntry`` (``level``,
  ``lines``: ``LogLine`` with ``text``, ``level``, ``continuation``, ``json``,
  ``cursor``).
* ``fragments.html#log_skipped``: ``count``.
* ``fragments.html#log_notice``: ``notice``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Final, Literal, NamedTuple

import orjson
from django.template.loader import render_to_string

from streams.http.sse import HEARTBEAT, Event, Message
from streams.logs.fanout import SLICE_BYTES, slice_lines
from streams.logs.follow import IdleEvent, LinesEvent, LogEvent, NoticeEvent, SkippedEvent
from streams.logs.lines import LogCursor, LogLine, group_entries

Format = Literal["html", "json"]
FORMATS: Final[tuple[Format, ...]] = ("html", "json")

LINES_TEMPLATE: Final = "streams/fragments.html#log_lines"
SKIPPED_TEMPLATE: Final = "streams/fragments.html#log_skipped"
NOTICE_TEMPLATE: Final = "streams/fragments.html#log_notice"

#: The most data one ``lines`` event carries: with its ``data:``/``id:``
#: framing a frame stays within one of Django's 64 KiB ASGI body messages.
EVENT_DATA_BYTES: Final = 56 * 1024
_JSON_OPEN: Final = '{"lines":['
_JSON_CLOSE: Final = "]}"


class Piece(NamedTuple):
    """The data of an event holding some lines alone, its byte size, and its ``id:``."""

    data: str
    size: int
    cursor: LogCursor


def render_lines(lines: tuple[LogLine, ...] | list[LogLine]) -> str:
    if not lines:
        return ""
    return render_to_string(LINES_TEMPLATE, {"entries": group_entries(lines)}).strip()


def json_items(lines: tuple[LogLine, ...] | list[LogLine]) -> str:
    """The lines as JSON objects separated by commas (the inside of the ``lines`` array)."""
    return orjson.dumps([line.as_dict() for line in lines]).decode()[1:-1]


def json_lines(lines: tuple[LogLine, ...] | list[LogLine]) -> str:
    return _JSON_OPEN + json_items(lines) + _JSON_CLOSE


def _utf8_size(data: str) -> int:
    return len(data) if data.isascii() else len(data.encode())


def pieces(lines: tuple[LogLine, ...], fmt: Format) -> tuple[Piece, ...]:
    """``lines`` encoded, halved by lines until each piece is under ``EVENT_DATA_BYTES``."""
    data = render_lines(lines) if fmt == "html" else json_lines(lines)
    size = _utf8_size(data)
    if size <= EVENT_DATA_BYTES or len(lines) == 1:
        return (Piece(data, size, lines[-1].cursor),)
    half = len(lines) // 2
    return pieces(lines[:half], fmt) + pieces(lines[half:], fmt)


def _html_pieces(lines: tuple[LogLine, ...]) -> tuple[Piece, ...]:
    return pieces(lines, "html")


def _json_pieces(lines: tuple[LogLine, ...]) -> tuple[Piece, ...]:
    return pieces(lines, "json")


def _event_pieces(event: LinesEvent, fmt: Format) -> Iterator[Piece]:
    if event.batches is not None:
        encode = _html_pieces if fmt == "html" else _json_pieces
        for batch in event.batches:
            if batch.lines:
                yield from batch.encoded(fmt, encode)
        return
    for run in slice_lines(event.lines, SLICE_BYTES):
        yield from pieces(run, fmt)


def _joined(group: list[Piece], fmt: Format) -> str:
    if len(group) == 1:
        return group[0].data  # the shared string itself: framed once for every client
    if fmt == "html":
        return "".join(piece.data for piece in group)
    inner = len(_JSON_OPEN), -len(_JSON_CLOSE)
    return _JSON_OPEN + ",".join(piece.data[inner[0] : inner[1]] for piece in group) + _JSON_CLOSE


def single_event(event: LinesEvent, fmt: Format) -> Event | None:
    """The one event of the usual case (one shared batch, one piece), else ``None``.

    A client that keeps up gets one small batch per event: this skips the
    packing below, and the event's data is the batch's own shared string.
    """
    batches = event.batches
    if batches is None or len(batches) != 1 or not event.lines:
        return None
    encoded = batches[0].encoded(fmt, _html_pieces if fmt == "html" else _json_pieces)
    if len(encoded) != 1:
        return None
    return Event(encoded[0].data, event="lines", id=str(event.cursor))


def lines_to_sse(event: LinesEvent, fmt: Format) -> Iterator[Event]:
    """A ``lines`` event as SSE events of at most ``EVENT_DATA_BYTES`` each, in order.

    The last one's ``id:`` is the event's cursor; an event with no line is one
    empty ``lines`` event (its ``id:`` still gives the client a cursor).
    """
    if not event.lines:
        yield Event(
            "" if fmt == "html" else _JSON_OPEN + _JSON_CLOSE, event="lines", id=str(event.cursor)
        )
        return
    group: list[Piece] = []
    size = 0
    for piece in _event_pieces(event, fmt):
        if group and size + piece.size > EVENT_DATA_BYTES:
            yield Event(_joined(group, fmt), event="lines", id=str(group[-1].cursor))
            group, size = [], 0
        group.append(piece)
        size += piece.size
    yield Event(_joined(group, fmt), event="lines", id=str(event.cursor))


def to_sse(event: SkippedEvent | NoticeEvent, fmt: Format) -> Event:
    """A skipped count or a notice as one SSE event, its ``id:`` the cursor."""
    cursor = str(event.cursor)
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


def event_messages(event: LogEvent, fmt: Format) -> Iterator[Message]:
    """One event as SSE messages; idleness becomes a heartbeat comment."""
    if isinstance(event, IdleEvent):
        yield HEARTBEAT
    elif isinstance(event, LinesEvent):
        single = single_event(event, fmt)
        if single is not None:
            yield single
        else:
            yield from lines_to_sse(event, fmt)
    else:
        yield to_sse(event, fmt)


async def sse_events(events: AsyncIterator[LogEvent], fmt: Format) -> AsyncIterator[Message]:
    """SSE messages of ``events`` (``event_messages`` of each)."""
    async for event in events:
        if isinstance(event, LinesEvent) and (single := single_event(event, fmt)) is not None:
            yield single  # the usual case, without a generator per event
            continue
        for message in event_messages(event, fmt):
            yield message


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
