"""Encoders for history search events: HTML fragments in SSE events.

Pure functions from a ``streams.logs.search`` event to an ``Event``; the view
only wires them. Event names: ``result`` (one line, highlighted, with its
permalink), ``progress`` (the bar), ``done`` (the summary; the page closes
the stream on it). Fragments are partials of ``templates/streams/search.html``.

Redaction happens here, on the way out: a line a rule covers is redacted
before it is highlighted (the ranges are found again in the redacted text,
so no highlight can point into a hidden value), and a line that matches
only through a hidden value is not sent at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from django.template.loader import render_to_string
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from streams.http.sse import Event, Message
from streams.logs.history import SearchResult
from streams.logs.patterns import LineMatcher
from streams.logs.redaction import Redactor
from streams.logs.search import DoneEvent, ProgressEvent, ResultEvent, SearchEvent

TEMPLATE: Final = "streams/search.html"


def highlighted(
    text: str, spans: tuple[tuple[int, int], ...] | list[tuple[int, int]]
) -> SafeString:
    """``text`` escaped, with each span wrapped in ``<mark>``."""
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces.append(conditional_escape(text[last:start]))
        pieces.append(f"<mark>{conditional_escape(text[start:end])}</mark>")
        last = end
    pieces.append(conditional_escape(text[last:]))
    # Safe: every piece is escaped above.
    return mark_safe("".join(pieces))


def result_html(
    result: SearchResult,
    matcher: LineMatcher,
    redactor: Redactor | None,
    permalink: Callable[[str], str],
) -> str:
    text = result.text
    spans = result.spans
    if redactor is not None:
        redacted = redactor.redact(text)
        if redacted is not text:
            text, spans = redacted, tuple(matcher.spans(redacted))
    when = datetime.fromtimestamp(result.time, UTC).isoformat() if result.time else ""
    return render_to_string(
        f"{TEMPLATE}#result",
        {
            "result": result,
            "html": highlighted(text, spans),
            "file": result.path.rsplit("/", 1)[-1],
            "when": when,
            "permalink": permalink(result.cursor) if result.cursor else "",
        },
    ).strip()


def _matched_only_a_hidden_value(
    text: str, matcher: LineMatcher, redactor: Redactor | None
) -> bool:
    """Whether a result matches as written but not as redacted (the search scans raw bytes).

    Such a result is dropped: showing it would tell the client that a hidden
    value matched its query (``q=ada@`` finding a redacted address).
    """
    if redactor is None:
        return False
    redacted = redactor.redact(text)
    return redacted is not text and not matcher.matches_text(redacted)


def search_messages(
    events: AsyncIterator[SearchEvent],
    matcher: LineMatcher,
    redactor: Redactor | None,
    permalink: Callable[[str], str],
) -> AsyncIterator[Message]:
    """The SSE messages of a search (see the module docstring)."""

    async def messages() -> AsyncIterator[Message]:
        hidden = 0
        async for event in events:
            if isinstance(event, ResultEvent):
                if _matched_only_a_hidden_value(event.result.text, matcher, redactor):
                    hidden += 1
                    continue
                html = result_html(event.result, matcher, redactor, permalink)
                yield Event(html, event="result")
            elif isinstance(event, ProgressEvent):
                html = render_to_string(f"{TEMPLATE}#progress", {"progress": event}).strip()
                yield Event(html, event="progress")
            elif isinstance(event, DoneEvent):
                done = replace(event, results=event.results - hidden)
                html = render_to_string(f"{TEMPLATE}#done", {"done": done}).strip()
                yield Event(html, event="done")

    return messages()
