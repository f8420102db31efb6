"""The overview's producer: one card per log source, sent when it changes.

One SSE connection serves the whole overview page: an event named
``source-<name>`` per source, whose data is the ``fragments.html#source_card`` partial
fragment (latest line, lines per minute by level over the last minute, and
a chart of lines per minute by level over the last hour, ``streams.logs.chart``,
filled from the source's own timestamps when first shown, then live). All
cards are sent at connect; after that a card is sent when it changed, at most
about once per ``MIN_INTERVAL`` seconds per source, so a busy log does not
flood the page (``due_cards``, a pure function of the cards, what was sent
when, and the time).

The counts and the latest line (``SourceActivity``) belong to the overview,
not to the source: one per fan-out, attached when the fan-out is created
(``on_new_fanout``) and fed by its observer hook (``FanOut.add_observer``),
so they cover the time the source has been followed by this process, and
every overview client shares them. The overview still subscribes to each
source, to keep it followed and to wake on lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from django.template.loader import render_to_string

from streams.http.sse import Event
from streams.logs.chart import CHART_MINUTES, Chart, MinuteCounts, chart_of
from streams.logs.fanout import FanOut, LogBatch, on_new_fanout
from streams.logs.lines import LEVELS, LogLine
from streams.logs.redacted import redacted_line
from streams.logs.redaction import Redactor
from streams.logs.sources import LogSource, SourceSubscription

MIN_INTERVAL: Final = 1.0
CARD_TEMPLATE: Final = "streams/fragments.html#source_card"
#: The window of ``LevelRates``.
RATE_WINDOW_SECONDS: Final = 60


class LevelRates:
    """Lines per level over the last minute, in one-second buckets (the overview)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: deque[tuple[int, Counter[str]]] = deque()

    def add(self, lines: tuple[LogLine, ...]) -> None:
        now = int(self._clock())
        if not self._buckets or self._buckets[-1][0] != now:
            self._buckets.append((now, Counter()))
        counter = self._buckets[-1][1]
        for line in lines:
            if not line.continuation:
                counter[line.level] += 1
        self._expire(now)

    def per_minute(self) -> Counter[str]:
        self._expire(int(self._clock()))
        total: Counter[str] = Counter()
        for _, counter in self._buckets:
            total.update(counter)
        return total

    def _expire(self, now: int) -> None:
        while self._buckets and self._buckets[0][0] <= now - RATE_WINDOW_SECONDS:
            self._buckets.popleft()


class SourceActivity:
    """What the overview shows of one fan-out: rates, the chart's minutes, the latest line."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = LevelRates(clock)
        self.minutes = MinuteCounts()
        #: Whether the chart's past was asked of the source (once per fan-out).
        self.chart_filled = False
        self.latest: LogLine | None = None

    def observe(self, batch: LogBatch) -> None:
        """The fan-out's observer: count the lines, remember the last header line."""
        lines = batch.lines
        if not lines:
            return
        self.rates.add(lines)
        self.minutes.add(lines)
        self.latest = next((line for line in reversed(lines) if not line.continuation), lines[-1])

    def remember(self, lines: list[LogLine]) -> None:
        """Take the latest line from a backfill (before any line was observed)."""
        if self.latest is None and lines:
            self.latest = ([line for line in lines if not line.continuation] or lines)[-1]


_activities: weakref.WeakKeyDictionary[FanOut, SourceActivity] = weakref.WeakKeyDictionary()


def activity_of(fanout: FanOut) -> SourceActivity:
    """The overview's activity of ``fanout``: observing it since it was created.

    (Since the first call for a fan-out created before this module was imported.)
    """
    activity = _activities.get(fanout)
    if activity is None:
        activity = _activities[fanout] = SourceActivity()
        fanout.add_observer(activity.observe)
    return activity


on_new_fanout(activity_of)


@dataclass(frozen=True)
class SourceCard:
    name: str
    url: str
    exists: bool
    latest: LogLine | None
    rates: tuple[tuple[str, int], ...]
    total: int
    chart: Chart


def render_card(card: SourceCard) -> str:
    return render_to_string(CARD_TEMPLATE, {"card": card}).strip()


def due_cards(
    cards: Mapping[str, SourceCard],
    sent: Mapping[str, SourceCard],
    sent_at: Mapping[str, float],
    now: float,
    min_interval: float = MIN_INTERVAL,
) -> tuple[list[str], float]:
    """The names whose card is due now, and when to look again at the latest.

    A card is due when it differs from the one last sent and the last send
    was at least ``min_interval`` ago (never sent: due at once). Unchanged
    cards are not due; the next look is at most ``min_interval`` away (the
    counts decay with time even without lines).
    """
    due: list[str] = []
    next_due = now + min_interval
    for name, card in cards.items():
        if sent.get(name) == card:
            continue
        when = sent_at.get(name, 0.0) + min_interval
        if when > now:
            next_due = min(next_due, when)
            continue
        due.append(name)
    return due, next_due


async def overview_events(
    sources: Mapping[str, LogSource],
    urls: Mapping[str, str],
    redactor: Redactor | None = None,
) -> AsyncIterator[Event]:
    """``source-<name>`` events: every card at once, then each card when it changes.

    ``redactor`` (the client's) redacts each card's latest line.
    """
    subscriptions: dict[str, SourceSubscription] = {}
    sequence = 0
    try:
        for name, source in sources.items():
            subscriptions[name] = source.subscribe()
        activities = {name: activity_of(s.fanout) for name, s in subscriptions.items()}
        # What each chart had observed at its subscription's start (no await since).
        snapshots = {name: activity.minutes.snapshot() for name, activity in activities.items()}
        for name, subscription in subscriptions.items():
            activity = activities[name]
            if activity.latest is None:
                async for lines in subscription.backfill(1):
                    activity.remember(lines)
            if not activity.chart_filled:
                activity.chart_filled = True
                since = time.time() - CHART_MINUTES * 60
                counts = await sources[name].level_minutes(since, subscription.start)
                activity.minutes.fill(counts, snapshots[name])
            subscription.release()
        sent: dict[str, SourceCard] = {}
        sent_at: dict[str, float] = {}
        while True:
            now = time.monotonic()
            cards = {}
            for name, subscription in subscriptions.items():
                subscription.discard()
                cards[name] = _card(name, urls[name], sources[name], activities[name], redactor)
            due, next_due = due_cards(cards, sent, sent_at, now)
            for name in due:
                sent[name], sent_at[name] = cards[name], now
                sequence += 1
                yield Event(render_card(cards[name]), event=f"source-{name}", id=str(sequence))
            # Wake for a new line (a changed card) or when the counts may have decayed.
            await _wait_any(list(subscriptions.values()), next_due - time.monotonic())
    finally:
        for subscription in subscriptions.values():
            subscription.close()


async def _wait_any(subscriptions: list[SourceSubscription], seconds: float) -> None:
    """Until one of ``subscriptions`` has something queued, or ``seconds`` have passed."""
    waiters = [asyncio.ensure_future(s.wait()) for s in subscriptions]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


def _card(
    name: str,
    url: str,
    source: LogSource,
    activity: SourceActivity,
    redactor: Redactor | None,
) -> SourceCard:
    counts = activity.rates.per_minute()
    latest = activity.latest
    if latest is not None and redactor is not None:
        latest = redacted_line(latest, redactor)
    return SourceCard(
        name=name,
        url=url,
        exists=source.summary().exists,
        latest=latest,
        rates=tuple((level, counts.get(level, 0)) for level in LEVELS),
        total=sum(counts.values()),
        chart=chart_of(activity.minutes.window()),
    )
