"""The overview's producer: one card per log source, sent when it changes.

One SSE connection serves the whole overview page: an event named
``source-<name>`` per source, whose data is the ``_source_card.html``
fragment (latest line, lines per minute by level over the last minute). All
cards are sent at connect; after that a card is sent when it changed, at most
about once per ``MIN_INTERVAL`` seconds per source, so a busy log does not
flood the page. The counts live on the shared tailer (``LevelRates``), so they
cover the time the file has been followed by this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from django.template.loader import render_to_string

from streams.http.sse import Event
from streams.logs.files.tailer import Subscription, get_tailer
from streams.logs.lines import LEVELS, LogLine

MIN_INTERVAL: Final = 1.0
CARD_TEMPLATE: Final = "streams/fragments.html#source_card"


@dataclass(frozen=True)
class SourceCard:
    name: str
    url: str
    exists: bool
    latest: LogLine | None
    rates: tuple[tuple[str, int], ...]
    total: int


def render_card(card: SourceCard) -> str:
    return render_to_string(CARD_TEMPLATE, {"card": card}).strip()


async def overview_events(
    sources: Mapping[str, Path], urls: Mapping[str, str]
) -> AsyncIterator[Event]:
    """``source-<name>`` events: every card at once, then each card when it changes."""
    subscriptions: dict[str, Subscription] = {}
    sequence = 0
    try:
        for name, path in sources.items():
            subscriptions[name] = get_tailer(path).subscribe()
        for subscription in subscriptions.values():
            if subscription.tailer.latest is None:
                async for lines in subscription.backfill(1):
                    latest = [line for line in lines if not line.continuation] or lines
                    subscription.tailer.latest = latest[-1]
            subscription.release_file()
        sent: dict[str, SourceCard] = {}
        sent_at: dict[str, float] = {}
        while True:
            now = time.monotonic()
            next_due = now + MIN_INTERVAL
            for name, subscription in subscriptions.items():
                subscription.discard()
                card = _card(name, urls[name], subscription, sources[name])
                if sent.get(name) == card:
                    continue
                due = sent_at.get(name, 0.0) + MIN_INTERVAL
                if due > now:
                    next_due = min(next_due, due)
                    continue
                sent[name], sent_at[name] = card, now
                sequence += 1
                yield Event(render_card(card), event=f"source-{name}", id=str(sequence))
            # Wake for a new line (a changed card) or when the counts may have decayed.
            waiters = [asyncio.ensure_future(s.wait()) for s in subscriptions.values()]
            try:
                timeout = max(0.0, next_due - time.monotonic())
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
    finally:
        for subscription in subscriptions.values():
            subscription.close()


def _card(name: str, url: str, subscription: Subscription, path: Path) -> SourceCard:
    tailer = subscription.tailer
    counts = tailer.rates.per_minute()
    return SourceCard(
        name=name,
        url=url,
        exists=tailer.position.inode != 0 or path.exists(),
        latest=tailer.latest,
        rates=tuple((level, counts.get(level, 0)) for level in LEVELS),
        total=sum(counts.values()),
    )
