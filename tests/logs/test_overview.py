"""The overview's pure parts: which cards are due (with a fake clock) and the activity observer."""

from __future__ import annotations

from streams.logs.chart import Chart
from streams.logs.fanout import FanOut, LogBatch
from streams.logs.files.cursor import Cursor, parse_texts
from streams.logs.overview import (
    MIN_INTERVAL,
    LevelRates,
    SourceActivity,
    SourceCard,
    activity_of,
    due_cards,
)


def card(name: str, total: int = 0) -> SourceCard:
    return SourceCard(name, f"/logs/{name}/", True, None, (("info", total),), total, Chart((), 0))


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_every_card_is_due_at_connect():
    cards = {"a": card("a"), "b": card("b")}
    due, next_due = due_cards(cards, {}, {}, now=5.0)
    assert due == ["a", "b"]
    assert next_due == 5.0 + MIN_INTERVAL


def test_an_unchanged_card_is_not_due_however_long_ago_it_was_sent():
    cards = {"a": card("a")}
    assert due_cards(cards, {"a": card("a")}, {"a": 0.0}, now=500.0) == ([], 500.0 + MIN_INTERVAL)


def test_a_changed_card_waits_for_its_interval_and_says_when():
    clock = FakeClock(100.0)
    sent, sent_at = {"a": card("a", 1)}, {"a": clock()}
    clock.now += 0.25
    due, next_due = due_cards({"a": card("a", 2)}, sent, sent_at, clock())
    assert due == []
    assert next_due == 100.0 + MIN_INTERVAL
    clock.now = 100.0 + MIN_INTERVAL
    assert due_cards({"a": card("a", 2)}, sent, sent_at, clock())[0] == ["a"]


def test_level_rates_count_headers_per_minute_and_forget_after_it():
    clock = FakeClock()
    rates = LevelRates(clock)
    rates.add(tuple(parse_texts(["ERROR boom", "  at frame", "INFO ok"])))
    assert rates.per_minute() == {"error": 1, "info": 1}
    clock.now += 59
    rates.add(tuple(parse_texts(["INFO later"])))
    assert rates.per_minute() == {"error": 1, "info": 2}
    clock.now += 1
    assert rates.per_minute() == {"info": 1}


def test_the_activity_is_fed_by_the_fan_out_observer_from_its_creation_and_shared():
    fanout = FanOut(Cursor.origin())
    lines = tuple(parse_texts(["WARNING disk", "  detail"]))
    fanout.publish(LogBatch(lines, lines[-1].cursor))  # before any overview asked
    activity = activity_of(fanout)
    assert activity_of(fanout) is activity
    assert activity_of(FanOut(Cursor.origin())) is not activity
    fanout.publish(LogBatch((), lines[-1].cursor, "rotated"))  # a notice changes nothing
    assert activity.latest is not None
    assert activity.latest.text == "WARNING disk"  # the header, not its continuation
    assert activity.rates.per_minute() == {"warning": 1}


def test_a_backfilled_latest_line_never_replaces_an_observed_one():
    activity = SourceActivity(FakeClock())
    activity.remember(parse_texts(["INFO from the file", "  continued"]))
    assert activity.latest is not None
    assert activity.latest.text == "INFO from the file"
    activity.observe(LogBatch(tuple(parse_texts(["ERROR live"])), Cursor(1, 1)))
    activity.remember(parse_texts(["INFO stale"]))
    assert activity.latest.text == "ERROR live"
