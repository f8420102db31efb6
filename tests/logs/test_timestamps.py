"""Line timestamps in the common formats, continuation lines, and since/until parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from streams.logs.timestamps import (
    TimeBoundField,
    TimeContext,
    TimeRange,
    TimeRangeForm,
    line_datetime,
    line_time,
    records,
)

UTC_CONTEXT = TimeContext(UTC, reference=datetime(2026, 12, 2, 15, tzinfo=UTC).timestamp())
T14 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"2026-12-02T14:00:00 INFO started", T14),
        (b"2026-12-02T14:00:00Z INFO started", T14),
        (b"2026-12-02 14:00:00,250 ERROR python logging", T14 + 0.25),
        (b"2026-12-02 14:00:00.123456 debug", T14 + 0.123456),
        (b"2026-12-02T15:00:00+01:00 offset with colon", T14),
        (b"2026-12-02T09:00:00-0500 offset without colon", T14),
        (b"2026-12-02 15:30:00 +0130 offset after a space", T14),
        (b"[2026-12-02 14:00:00,000] bracketed", T14),
        (b"Dec  2 14:00:00 host sshd[1]: syslog, one-digit day", T14),
        (b"Nov 22 14:00:00 host app: syslog, two-digit day", T14 - 10 * 86400),
        (b'{"ts": 1796220000, "msg": "seconds"}', T14),
        (b'{"ts": 1796220000.5, "msg": "fractional seconds"}', T14 + 0.5),
        (b'{"time": 1796220000123, "msg": "milliseconds"}', T14 + 0.123),
        (b'{"timestamp": 1796220000123456}', T14 + 0.123456),
        (b'{"level": "info", "@timestamp": 1796220000000000000}', T14),
        (b'{"msg": "x", "time": "2026-12-02T14:00:00Z"}', T14),
        (b'{"timestamp":"2026-12-02 15:00:00+01:00","level":"warn"}', T14),
        (b'10.0.0.1 - - [02/Dec/2026:15:00:00 +0100] "GET / HTTP/1.1" 200 12', T14),
    ],
)
def test_it_reads_the_common_formats(line: bytes, expected: float):
    assert line_time(line, UTC_CONTEXT) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "line",
    [
        b'  File "app.py", line 3, in handler',
        b"Traceback (most recent call last):",
        b"ValueError: no time here",
        b"",
        b"2026-13-02 14:00:00 month thirteen",
        b"2026-12-02 25:00:00 hour twenty-five",
        b"Foo  2 14:00:00 not a month",
        b'{"msg": "no time key"}',
        b'{"ts": "yesterday"}',
        b"12345 a number is not a time",
    ],
)
def test_lines_without_a_timestamp_have_none(line: bytes):
    assert line_time(line, UTC_CONTEXT) is None


def test_a_time_without_a_zone_is_read_in_the_contexts_zone_with_its_daylight_saving():
    paris = TimeContext(ZoneInfo("Europe/Paris"))
    winter = datetime(2026, 12, 2, 15, tzinfo=UTC).timestamp() - 3600 * 1
    summer = datetime(2026, 7, 2, 15, tzinfo=UTC).timestamp() - 3600 * 2
    assert line_time(b"2026-12-02 15:00:00 x", paris) == winter
    assert line_time(b"2026-07-02 15:00:00 x", paris) == summer
    # An explicit zone wins over the context's.
    assert (
        line_time(b"2026-07-02T15:00:00Z x", paris)
        == datetime(2026, 7, 2, 15, tzinfo=UTC).timestamp()
    )


def test_a_syslog_line_from_december_read_in_january_is_from_last_year():
    january = TimeContext(UTC, reference=datetime(2027, 1, 1, 0, 5, tzinfo=UTC).timestamp())
    when = line_time(b"Dec 31 23:59:00 host app: before midnight", january)
    assert when == datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    same_day = line_time(b"Jan  1 00:04:00 host app: after midnight", january)
    assert same_day == datetime(2027, 1, 1, 0, 4, tzinfo=UTC).timestamp()


def test_a_line_without_a_timestamp_belongs_to_the_line_before():
    lines = [
        b"Traceback before any timestamp",
        b"2026-12-02 14:00:00,000 ERROR boom",
        b"Traceback (most recent call last):",
        b'  File "app.py", line 1, in <module>',
        b"ValueError: boom",
        b"2026-12-02 14:00:05,000 INFO next",
    ]
    timed = list(records(lines, UTC_CONTEXT))
    assert [(t.time, t.continuation) for t in timed] == [
        (None, True),
        (T14, False),
        (T14, True),
        (T14, True),
        (T14, True),
        (T14 + 5, False),
    ]


def test_line_datetime_decodes_and_gives_an_aware_datetime():
    assert line_datetime("2026-12-02 14:00:00 é", UTC_CONTEXT) == datetime(
        2026, 12, 2, 14, tzinfo=UTC
    )
    assert line_datetime("no time", UTC_CONTEXT) is None


NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def bound_field(parameter: str = "since") -> TimeBoundField:
    return TimeBoundField(parameter=parameter, now=lambda: NOW, zone=lambda: PARIS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("15min", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("2H", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-12-02T14:00:00Z", datetime(2026, 12, 2, 14, tzinfo=UTC)),
        ("2026-12-02T14:00:00+01:00", datetime(2026, 12, 2, 13, tzinfo=UTC)),
        ("2026-12-02 15:00", datetime(2026, 12, 2, 15, tzinfo=PARIS)),
        ("2026-12-02T15:00", datetime(2026, 12, 2, 15, tzinfo=PARIS)),
        ("2026-12-02", datetime(2026, 12, 2, tzinfo=PARIS)),
    ],
)
def test_a_time_bound_is_relative_or_absolute(value: str, expected: datetime):
    assert bound_field().clean(value) == expected


def test_an_empty_time_bound_is_none():
    assert bound_field().clean("") is None
    assert bound_field().clean(None) is None


@pytest.mark.parametrize("value", ["yesterday", "15", "m15", "2026-12-32", "1.5h", "-2h", "x" * 80])
def test_a_bad_time_bound_is_an_error_naming_its_parameter(value: str):
    with pytest.raises(ValidationError) as caught:
        bound_field("until").clean(value)
    assert caught.value.messages[0].startswith("until: ")


def test_a_relative_bound_reaching_back_absurdly_far_is_an_error():
    with pytest.raises(ValidationError, match=r"since: '99999d' reaches back more than"):
        bound_field().clean("99999d")


def test_the_form_gives_a_time_range_and_names_the_bad_parameter():
    form = TimeRangeForm({"since": "2026-12-02T14:00:00Z", "until": "2026-12-02T15:00:00Z"})
    assert form.is_valid(), form.errors
    assert form.time_range() == TimeRange(T14, T14 + 3600)

    bad = TimeRangeForm({"since": "soon"})
    assert not bad.is_valid()
    assert bad.error_text().startswith("since: 'soon' is not a duration back from now")


def test_since_after_until_is_refused():
    form = TimeRangeForm({"since": "2026-12-02T15:00:00Z", "until": "2026-12-02T14:00:00Z"})
    assert not form.is_valid()
    assert form.error_text().startswith("since: must not be later than until")


def test_a_bounded_range_excludes_lines_of_unknown_time():
    assert TimeRange().contains(None)
    assert not TimeRange(since=T14).contains(None)
    assert TimeRange(T14, T14 + 1).contains(T14 + 1)
    assert not TimeRange(T14, T14 + 1).contains(T14 + 1.5)
    assert not TimeRange(T14, None).contains(T14 - 0.001)


def test_lines_of_one_minute_keep_their_own_seconds_and_zones():
    context = TimeContext(UTC)
    assert line_time(b"2026-12-02 14:00:07 a", context) == T14 + 7
    assert line_time(b"2026-12-02 14:00:59.5 b", context) == T14 + 59.5
    assert line_time(b"2026-12-02 14:00:07+01:00 c", context) == T14 + 7 - 3600
    assert line_time(b"2026-12-02 14:00:07 d", context) == T14 + 7
    assert line_time(b"2026-12-02 14:00:61 out of range", context) is None
