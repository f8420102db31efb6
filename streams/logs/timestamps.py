"""When a log line was written: its timestamp, and the ``since``/``until`` of a query.

A search over a large file parses the time of many lines, so parsing is a
prefix match with one compiled regular expression per format family and
arithmetic on the captured digits, never a general date parser per line.
Choices:

* **Formats understood**, each at the start of a line (after an optional
  ``[``, ``(`` or ``<``):

  - ISO 8601 and Python logging's default: ``2026-12-02T14:00:00``,
    ``2026-12-02 14:00:00,123``, ``...00.123456Z``, ``...00+01:00``,
    ``...00 +0100``;
  - syslog's ``Dec  2 14:00:00`` (RFC 3164: no year, see below);
  - a JSON line's ``"ts"``, ``"time"``, ``"timestamp"`` or ``"@timestamp"``
    key, an ISO 8601 string or an epoch number (seconds, or milli-, micro-,
    nanoseconds told apart by size);
  - and, searched in the line's first 200 bytes, the Common Log Format of
    web servers ``[02/Dec/2026:14:00:00 +0000]``.

* **Times are epoch seconds** (``float``): cheap to compare in a binary search
  and in a filter. A timestamp without a zone is read in the zone the caller
  gives (``TimeContext.zone``; the site's ``TIME_ZONE`` when wired).
* **The year of a syslog line** is the reference time's year, or the year
  before when that would put the line more than a day in the future (a file
  from December read in January).
* **A line without a timestamp belongs to the line before** (a traceback's
  frames): ``records`` carries the last time forward; a first line without
  one has no time.
* **Time bounds** (``since``/``until``) are client input: ``TimeBoundField``
  takes a relative duration back from now (``90s``, ``15m``, ``2h``, ``1d``,
  ``1w``) or an absolute ISO 8601 date or date-time; anything else is a
  ``ValidationError`` whose message names the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

#: How far into a line the Common Log Format timestamp is looked for.
CLF_SCAN_BYTES: Final = 200
#: ISO minutes remembered per context (the cache is cleared when full).
MINUTES_CACHE_SIZE: Final = 4096
#: A syslog time further than this in the future belongs to the year before.
SYSLOG_FUTURE_SLACK: Final = 86400.0

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
        start=1,
    )
}

# 2026-12-02T14:00:00.123+01:00 / 2026-12-02 14:00:00,123 / ... 14:00:00 +0100 / ...Z
_ISO_DATE_TIME: Final = rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
_ISO_ZONE: Final = rb"(Z|[+-]\d\d:?\d\d)(?![\w:])"
_ISO: Final = _ISO_DATE_TIME + rb"(?: ?" + _ISO_ZONE + rb")?"
#: The ISO 8601 time a line starts with when its zone, if any, follows without a
#: space: a pattern to extend (``history`` reads the level after it in the same
#: match). Its groups 1-8 are those ``iso_epoch`` reads.
ISO_GLUED_START: Final = rb"[\[(<]?" + _ISO_DATE_TIME + rb"(?:" + _ISO_ZONE + rb")?"
_ISO_PREFIX_RE: Final = re.compile(rb"[\[(<]?" + _ISO)
_ISO_RE: Final = re.compile(_ISO)
_SYSLOG_RE: Final = re.compile(
    rb"[\[(<]?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d):(\d\d)"
)
_JSON_TIME_RE: Final = re.compile(
    rb'"(?:ts|time|timestamp|@timestamp)"\s*:\s*(?:"([^"]{10,40})"|(-?\d+(?:\.\d+)?)[,}\s])'
)
_CLF_RE: Final = re.compile(
    rb"\[(\d\d)/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/(\d{4}):(\d\d):(\d\d):(\d\d)"
    rb" ([+-]\d{4})\]"
)


@dataclass(frozen=True)
class TimeContext:
    """What a line's timestamp may leave out: its zone, and for syslog its year."""

    zone: tzinfo = UTC
    #: "Now" for the syslog year (epoch seconds); the file's modification time is a good one.
    reference: float = field(default_factory=lambda: datetime.now(UTC).timestamp())
    # Naive times in a zone with daylight saving need the offset of their own
    # date; a fixed zone's offset is worked out once.
    _fixed: float | None = field(init=False, repr=False, compare=False)
    #: Epoch seconds of recently seen ISO minutes (text and zone) in this context.
    minutes_cache: dict[tuple[bytes, bytes | None], float] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fixed", _fixed_offset(self.zone))

    def local_to_epoch(self, parts: tuple[int, int, int, int, int, int], fraction: float) -> float:
        """Epoch seconds of a wall-clock time in this context's zone."""
        base = _epoch_utc(*parts) + fraction
        if self._fixed is not None:
            return base - self._fixed
        local = datetime(*parts, tzinfo=self.zone)
        offset = local.utcoffset()
        return base - (offset.total_seconds() if offset is not None else 0.0)


def _fixed_offset(zone: tzinfo) -> float | None:
    """The zone's offset in seconds when it never changes (UTC, fixed offsets), else ``None``."""
    winter = zone.utcoffset(datetime(2001, 1, 15))
    summer = zone.utcoffset(datetime(2001, 7, 15))
    if winter is None or winter != summer or zone.dst(datetime(2001, 7, 15)):
        return None
    return winter.total_seconds()


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _epoch_utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    return float(_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)


def _zone_seconds(zone: bytes) -> float:
    if zone == b"Z":
        return 0.0
    sign = -1 if zone[:1] == b"-" else 1
    digits = zone[1:].replace(b":", b"")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)


def _valid(month: int, day: int, hour: int, minute: int, second: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60


def iso_epoch(match: re.Match[bytes], context: TimeContext) -> float | None:
    """Epoch seconds of a match of ``_ISO`` (or ``ISO_GLUED_START``): its groups 1-8."""
    groups = match.groups()
    # Many lines share a minute: its epoch (zone applied) is computed once.
    # (Zone offsets change on minute boundaries, so this is exact.)
    key = (match.string[match.start(1) : match.end(5)], groups[7])
    second = int(groups[5])
    base = context.minutes_cache.get(key)
    if base is None:
        year, month, day, hour, minute = map(int, groups[:5])
        if not _valid(month, day, hour, minute, 0):
            return None
        zone = groups[7]
        if zone is not None:
            base = _epoch_utc(year, month, day, hour, minute, 0) - _zone_seconds(zone)
        else:
            base = context.local_to_epoch((year, month, day, hour, minute, 0), 0.0)
        if len(context.minutes_cache) >= MINUTES_CACHE_SIZE:
            context.minutes_cache.clear()
        context.minutes_cache[key] = base
    if second > 60:
        return None
    fraction = groups[6]
    if fraction:
        return base + second + int(fraction) / 10.0 ** len(fraction)
    return base + second


def _epoch_number(text: bytes) -> float:
    """A JSON epoch number in seconds, whatever its unit (told apart by magnitude)."""
    value = float(text)
    magnitude = abs(value)
    if magnitude >= 1e17:
        return value / 1e9
    if magnitude >= 1e14:
        return value / 1e6
    if magnitude >= 1e11:
        return value / 1e3
    return value


def line_time(line: bytes, context: TimeContext) -> float | None:
    """The epoch seconds a raw line starts with (see the module docstring), or ``None``."""
    first = line[:1]
    if first == b"{":
        json_match = _JSON_TIME_RE.search(line)
        if json_match is None:
            return None
        if json_match.group(2) is not None:
            return _epoch_number(json_match.group(2))
        iso = _ISO_RE.fullmatch(json_match.group(1))
        return iso_epoch(iso, context) if iso is not None else None
    if first.isdigit() or first in b"[(<":
        match = _ISO_PREFIX_RE.match(line)
        if match is not None:
            return iso_epoch(match, context)
    if first.isalpha() or first in b"[(<":
        syslog = _SYSLOG_RE.match(line)
        if syslog is not None:
            return _syslog_epoch(syslog, context)
    clf = _CLF_RE.search(line, 0, CLF_SCAN_BYTES)
    if clf is not None:
        day, month = int(clf.group(1)), _MONTHS[clf.group(2)]
        year, hour, minute, second = (int(clf.group(i)) for i in (3, 4, 5, 6))
        if not _valid(month, day, hour, minute, second):
            return None
        return _epoch_utc(year, month, day, hour, minute, second) - _zone_seconds(clf.group(7))
    return None


def _syslog_epoch(match: re.Match[bytes], context: TimeContext) -> float | None:
    month = _MONTHS[match.group(1)]
    day = int(match.group(2))
    hour, minute, second = int(match.group(3)), int(match.group(4)), int(match.group(5))
    if not _valid(month, day, hour, minute, second):
        return None
    year = datetime.fromtimestamp(context.reference, context.zone).year
    when = context.local_to_epoch((year, month, day, hour, minute, second), 0.0)
    if when > context.reference + SYSLOG_FUTURE_SLACK:
        when = context.local_to_epoch((year - 1, month, day, hour, minute, second), 0.0)
    return when


def line_datetime(text: str, context: TimeContext | None = None) -> datetime | None:
    """``line_time`` of a decoded line, as an aware ``datetime`` (UTC)."""
    when = line_time(text.encode("utf-8", "surrogateescape"), context or TimeContext())
    return datetime.fromtimestamp(when, UTC) if when is not None else None


@dataclass(frozen=True, slots=True)
class TimedLine:
    """A line with its record's time: its own, or for a continuation its header's."""

    raw: bytes
    time: float | None
    continuation: bool


def records(lines: Iterable[bytes], context: TimeContext) -> Iterator[TimedLine]:
    """Lines in file order, each with its time; a line without one takes the line before's."""
    last: float | None = None
    for raw in lines:
        when = line_time(raw, context)
        if when is None:
            yield TimedLine(raw, last, continuation=True)
        else:
            last = when
            yield TimedLine(raw, when, continuation=False)


# -- since / until ---------------------------------------------------------------------------

_DURATION_RE: Final = re.compile(r"(\d{1,9})\s*(s|m|min|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest relative bound accepted (a mistyped ``1000000d`` is an error, not year 0).
MAX_RELATIVE: Final = timedelta(days=3660)

BOUND_HELP: Final = (
    "a duration back from now (90s, 15m, 2h, 1d, 1w) "
    "or an ISO 8601 date or date-time (2026-12-02T14:00, 2026-12-02 14:00:00+01:00)"
)


def parse_time_bound(
    value: str, *, now: datetime, zone: tzinfo, parameter: str = "time"
) -> datetime:
    """An aware ``datetime`` for ``value`` (see ``TimeBoundField``); ``ValidationError`` else."""
    text = value.strip()
    duration = _DURATION_RE.fullmatch(text)
    if duration is not None:
        unit = _UNIT_SECONDS[duration.group(2).lower()]
        amount = timedelta(seconds=int(duration.group(1)) * unit)
        if amount > MAX_RELATIVE:
            raise ValidationError(
                f"{parameter}: {text!r} reaches back more than {MAX_RELATIVE.days} days",
                code="out_of_range",
            )
        return now - amount
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            parsed = datetime(day.year, day.month, day.day)
        else:
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise ValidationError(
            f"{parameter}: {text!r} is not {BOUND_HELP}", code="invalid"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


class TimeBoundField(forms.Field):
    """A ``since``/``until`` parameter: relative (``15m``) or absolute (ISO 8601).

    Cleans to an aware ``datetime`` or ``None`` when empty. ``now`` and
    ``zone`` are injectable for tests; by default Django's clock and the
    current time zone (for an absolute time written without a zone).
    """

    def __init__(
        self,
        *,
        parameter: str,
        now: Callable[[], datetime] = timezone.now,
        zone: Callable[[], tzinfo] = timezone.get_current_timezone,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.parameter = parameter
        self.now = now
        self.zone = zone

    def to_python(self, value: Any) -> datetime | None:
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        if len(text) > 64:
            raise ValidationError(f"{self.parameter}: too long to be a time", code="invalid")
        return parse_time_bound(text, now=self.now(), zone=self.zone(), parameter=self.parameter)


@dataclass(frozen=True)
class TimeRange:
    """``[since, until]`` in epoch seconds, either end open (``None``)."""

    since: float | None = None
    until: float | None = None

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def contains(self, when: float | None) -> bool:
        """Whether a line of time ``when`` is inside; a line of unknown time is not, if bounded."""
        if when is None:
            return not self.bounded
        if self.since is not None and when < self.since:
            return False
        return self.until is None or when <= self.until


class TimeRangeForm(forms.Form):
    """``since`` and ``until``; mixed into a query's form, or used on its own."""

    since = TimeBoundField(parameter="since")
    until = TimeBoundField(parameter="until")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            raise ValidationError(
                "since: must not be later than until (%(since)s > %(until)s)",
                code="empty_range",
                params={"since": since.isoformat(), "until": until.isoformat()},
            )
        return data

    def time_range(self) -> TimeRange:
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        return TimeRange(
            since.timestamp() if since is not None else None,
            until.timestamp() if until is not None else None,
        )

    def error_text(self) -> str:
        """Every error on its own line; each message already names its parameter."""
        return "".join(f"{error}\n" for errors in self.errors.values() for error in errors)


def time_range_from(params: Mapping[str, Any]) -> TimeRange:
    """A ``TimeRange`` from already-valid parameters (tests, scripts); ``ValidationError`` else."""
    form = TimeRangeForm(params)
    if not form.is_valid():
        raise ValidationError(form.error_text().strip())
    return form.time_range()
