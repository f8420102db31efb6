"""The log line model: what a raw line of a log file means to a reader.

Pure functions and small value objects, no I/O, so the tailer, the stream
views and the tests share one definition of a line. Choices:

* **Levels** are a closed vocabulary (``LEVELS``, lowest first). A line's level
  comes from the first level word in it (``ERROR``, ``WARN``, ``[error]``,
  ``level=warning``...), else from a JSON line's ``level``/``levelname``/
  ``severity`` key, else from an HTTP status in a request log (5xx error, 4xx
  warning), else ``info``. Only the start of a long line is searched, so a
  word deep inside a message does not relabel it.
* **Tracebacks stay with their header**: a line that belongs to the record
  above it (``Traceback (most recent call last):``, indented frames, the final
  exception line, blank lines, Python's "During handling..." chaining lines)
  is a *continuation*. It takes its header's level, and a filter keeps or
  drops it together with its header. Continuation is decided line by line
  with a small state carried across batches (``LineParser``), so nothing is
  held back waiting for the next line.
* **JSON lines** (an object on one line) carry a pretty-printed copy for
  display; the raw text is kept as written.
* **Cursors** are the source's own (``LogCursor``): a line carries one, and
  only its source parses or compares it. A file's is ``"<inode>:<offset>"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Level = Literal["debug", "info", "warning", "error", "critical"]
LEVELS: Final[tuple[Level, ...]] = ("debug", "info", "warning", "error", "critical")
LEVEL_RANK: Final[dict[str, int]] = {level: rank for rank, level in enumerate(LEVELS)}

#: How much of a line is searched for its level.
LEVEL_SCAN_CHARS: Final = 200

_LEVEL_WORDS: Final[dict[str, Level]] = {
    "debug": "debug",
    "trace": "debug",
    "info": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "err": "error",
    "error": "error",
    "crit": "critical",
    "critical": "critical",
    "fatal": "critical",
    "alert": "critical",
    "emerg": "critical",
}
# Upper-case words anywhere near the start (``ERROR``), or any case when
# bracketed or keyed (``[error]``, ``level=warning``, ``<warn>``).
_LEVEL_RE: Final = re.compile(
    r"\b(DEBUG|TRACE|INFO|NOTICE|WARN(?:ING)?|ERR(?:OR)?|CRIT(?:ICAL)?|FATAL|ALERT|EMERG)\b"
    r"|[\[<(](debug|trace|info|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal|alert|emerg)[\]>):]"
    r"|\blevel(?:name)?[=:]\s*\"?(debug|trace|info|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal)\b",
    re.IGNORECASE,
)
# ``"GET /path HTTP/1.1" 503``: a request log's status.
_STATUS_RE: Final = re.compile(r"\"[A-Z]+ \S+ HTTP/[\d.]+\" ([1-5]\d\d)\b")
_JSON_LEVEL_KEYS: Final = ("level", "levelname", "severity", "lvl")

_TRACEBACK_START: Final = "Traceback (most recent call last):"
_CHAIN_LINES: Final = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def level_of_word(word: str) -> Level | None:
    return _LEVEL_WORDS.get(word.lower())


def detect_level(text: str, parsed: object = None) -> Level:
    """The level a line announces (see the module docstring), ``info`` when it says none."""
    if isinstance(parsed, dict):
        for key in _JSON_LEVEL_KEYS:
            value = parsed.get(key)
            if isinstance(value, str) and (level := level_of_word(value)):
                return level
    head = text[:LEVEL_SCAN_CHARS]
    for match in _LEVEL_RE.finditer(head):
        # A bare word counts only in capitals: "error" inside a sentence does not.
        if match.group(1) is not None and not match.group(1).isupper():
            continue
        word = next(group for group in match.groups() if group)
        level = level_of_word(word)
        if level is not None:
            return level
    status = _STATUS_RE.search(head)
    if status:
        code = int(status.group(1))
        if code >= 500:
            return "error"
        if code >= 400:
            return "warning"
    return "info"


def parse_json_object(text: str) -> dict[str, object] | None:
    """The object a JSON line holds, or ``None`` (only whole objects count)."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def pretty_json(value: dict[str, object]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def at_least(level: str, minimum: str | None) -> bool:
    """Whether ``level`` passes a minimum-level filter (``None`` passes everything)."""
    return minimum is None or LEVEL_RANK.get(level, 1) >= LEVEL_RANK[minimum]


class LogCursor(Protocol):
    """A position in a source, just after a line: opaque outside the source that made it.

    ``str()`` gives the SSE ``id:`` (what a client resumes from); equality
    compares positions. The source parses it back (``LogSource.parse_cursor``)
    and alone knows what is inside (a file's is ``"<inode>:<offset>"``,
    ``streams.logs.files.cursor``).
    """

    def __str__(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a log file, as read (without its line break)."""

    text: str
    level: Level
    cursor: LogCursor
    continuation: bool = False
    json: str | None = None  # the pretty-printed object, for JSON lines
    host: str = ""  # the shipping host's label (sources fed by several hosts)
    #: Character ranges a client's text filter matched (highlighted on the page).
    marks: tuple[tuple[int, int], ...] = ()

    @property
    def marked(self) -> SafeString:
        """The text escaped, each of ``marks`` wrapped in ``<mark>`` (what the page shows)."""
        pieces: list[str] = []
        last = 0
        for start, end in self.marks:
            pieces.append(escape(self.text[last:start]))
            pieces.append(f"<mark>{escape(self.text[start:end])}</mark>")
            last = end
        pieces.append(escape(self.text[last:]))
        return mark_safe("".join(pieces))  # every piece is escaped above

    def as_dict(self) -> dict[str, object]:
        """The public JSON shape of a line (``format=json``); ``host`` only when known."""
        if self.host:
            return {"text": self.text, "level": self.level, "host": self.host}
        return {"text": self.text, "level": self.level}


@dataclass
class LineParser:
    """Turns raw lines into ``LogLine``; remembers just enough to group tracebacks."""

    header_level: Level | None = None
    in_traceback: bool = False

    def parse(self, text: str, cursor: LogCursor) -> LogLine:
        continuation = self._is_continuation(text)
        if continuation:
            level: Level = self.header_level or "error"
            if self.header_level is None:
                self.header_level = level
            return LogLine(text, level, cursor, continuation=True)
        parsed = parse_json_object(text)
        level = detect_level(text, parsed)
        self.header_level = level
        return LogLine(
            text, level, cursor, json=pretty_json(parsed) if parsed is not None else None
        )

    def _is_continuation(self, text: str) -> bool:
        if text.startswith(_TRACEBACK_START) or text in _CHAIN_LINES:
            self.in_traceback = True
            return True
        if self.header_level is None:
            return False
        if text == "" or text[0] in " \t":
            return True
        if self.in_traceback:
            # The exception line ends the traceback ("ValueError: bad").
            self.in_traceback = False
            return True
        return False


@dataclass
class LogEntry:
    """A header line and the continuation lines that follow it (a traceback)."""

    level: Level
    lines: list[LogLine] = field(default_factory=list)


def group_entries(lines: Iterable[LogLine]) -> list[LogEntry]:
    """Group lines into entries for display; a leading continuation starts its own entry."""
    entries: list[LogEntry] = []
    for line in lines:
        if line.continuation and entries:
            entries[-1].lines.append(line)
        else:
            entries.append(LogEntry(line.level, [line]))
    return entries


def parse_lines(texts: Iterable[tuple[str, LogCursor]]) -> Iterator[LogLine]:
    """Parse a run of raw lines with a fresh parser (backfill, tests)."""
    parser = LineParser()
    for text, cursor in texts:
        yield parser.parse(text, cursor)
