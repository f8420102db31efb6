"""The log line model and its encoders: levels, tracebacks, JSON lines, filters, fragments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from streams.logs.encoding import lines_to_sse, to_sse, to_text
from streams.logs.files.cursor import Cursor, parse_texts
from streams.logs.files.source import FileSource
from streams.logs.follow import LineFilter, LinesEvent, NoticeEvent, SkippedEvent
from streams.logs.forms import LogStreamForm
from streams.logs.lines import group_entries
from streams.logs.patterns import LineMatcher

SOURCE = FileSource("app", Path("/var/log/app.log"))


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("2026-01-01 12:00:00,000 ERROR [app] boom", "error"),
        ("2026-01-01 12:00:00 WARN something odd", "warning"),
        ("[debug] cache miss", "debug"),
        ("level=critical msg=down", "critical"),
        ("CRITICAL database gone", "critical"),
        ("FATAL: out of memory", "critical"),
        ('127.0.0.1 - - "GET /x HTTP/1.1" 503 12', "error"),
        ('127.0.0.1 - - "GET /x HTTP/1.1" 404 12', "warning"),
        ('127.0.0.1 - - "GET /x HTTP/1.1" 200 12', "info"),
        ("an error in a sentence is not a level", "info"),
        ('{"level": "warning", "msg": "hi"}', "warning"),
        ('{"severity": "ERROR", "msg": "hi"}', "error"),
        ("plain text", "info"),
    ],
)
def test_it_detects_levels(text: str, level: str):
    assert parse_texts([text])[0].level == level


def test_a_traceback_is_grouped_with_its_header_and_takes_its_level():
    lines = parse_texts(
        [
            "2026-01-01 ERROR [app] request failed",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "    f()",
            "ValueError: bad",
            "2026-01-01 INFO [app] next",
        ]
    )
    assert [line.continuation for line in lines] == [False, True, True, True, True, False]
    assert {line.level for line in lines[:5]} == {"error"}
    entries = group_entries(lines)
    assert [len(entry.lines) for entry in entries] == [5, 1]
    assert [entry.level for entry in entries] == ["error", "info"]


def test_chained_tracebacks_stay_in_one_entry():
    lines = parse_texts(
        [
            "ERROR outer",
            "Traceback (most recent call last):",
            "  File 'a'",
            "KeyError: 'x'",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File 'b'",
            "RuntimeError: y",
        ]
    )
    assert len(group_entries(lines)) == 1


def test_json_lines_are_pretty_printed_and_keep_their_raw_text():
    raw = '{"level": "info", "event": "job_done", "rows": 3}'
    (line,) = parse_texts([raw])
    assert line.text == raw
    assert line.json is not None
    assert json.loads(line.json) == json.loads(raw)
    assert "\n" in line.json
    assert parse_texts(["{not json}"])[0].json is None


def test_cursor_round_trip_and_rejects_garbage():
    assert Cursor.parse("12:345") == Cursor(12, 345)
    assert str(Cursor(12, 345)) == "12:345"
    for bad in ["", "12", "a:b", "1:2:3", "-1:2", "1:" + "9" * 30]:
        with pytest.raises(ValueError, match="cursor"):
            Cursor.parse(bad)


def test_the_filter_keeps_or_drops_a_traceback_with_its_header():
    lines = parse_texts(
        ["INFO hello", "ERROR failed", "Traceback (most recent call last):", "  File 'a'", "X: y"]
    )
    assert [line.text for line in LineFilter(LineMatcher.build(level="error")).apply(lines)] == [
        "ERROR failed",
        "Traceback (most recent call last):",
        "  File 'a'",
        "X: y",
    ]
    (hello,) = LineFilter(LineMatcher.build(q="HELLO")).apply(lines)
    assert (hello.text, hello.marks) == ("INFO hello", ((5, 10),))
    assert LineFilter().apply(lines) == lines


def test_html_fragment_escapes_and_marks_levels():
    lines = tuple(parse_texts(["ERROR <script>alert(1)</script>", "  at frame"]))
    (event,) = lines_to_sse(LinesEvent(lines, lines[-1].cursor), "html")
    html = event.data
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'class="entry level-error"' in html
    assert "line level-error continuation" in html


def test_json_format_lists_text_and_level():
    lines = tuple(parse_texts(["WARNING disk", "plain"]))
    (event,) = lines_to_sse(LinesEvent(lines, lines[-1].cursor), "json")
    assert event.event == "lines"
    assert event.id == str(lines[-1].cursor)
    assert json.loads(event.data) == {
        "lines": [{"text": "WARNING disk", "level": "warning"}, {"text": "plain", "level": "info"}]
    }
    (empty,) = lines_to_sse(LinesEvent((), Cursor(1, 0)), "json")
    assert json.loads(empty.data) == {"lines": []}


def test_skipped_and_notice_events():
    skipped = to_sse(SkippedEvent(7, Cursor(1, 9)), "json")
    assert (skipped.event, skipped.id, json.loads(skipped.data)) == (
        "skipped",
        "1:9",
        {"skipped": 7},
    )
    assert "7 lines skipped" in to_sse(SkippedEvent(7, Cursor(1, 9)), "html").data
    notice = to_sse(NoticeEvent("rotated", Cursor(1, 9)), "json")
    assert (notice.event, json.loads(notice.data)) == ("notice", {"notice": "rotated"})
    assert to_text(SkippedEvent(2, Cursor(1, 1))) == b"[2 lines skipped]\n"


@pytest.mark.parametrize(
    ("params", "header", "message"),
    [
        ({"level": "loud"}, None, "level"),
        ({"backfill": "1001"}, None, "backfill"),
        ({"backfill": "-1"}, None, "backfill"),
        ({"backfill": "x"}, None, "backfill"),
        ({"format": "xml"}, None, "format"),
        ({"q": "x" * 501}, None, "q"),
        ({"re": "(unclosed"}, None, "re: not a valid regular expression"),
        ({"exclude": "a(?=b)"}, None, "exclude: not a valid regular expression"),
        ({}, "not-a-cursor", "Last-Event-ID"),
        ({"last_event_id": "1:2:3"}, None, "Last-Event-ID"),
    ],
)
def test_the_form_refuses_bad_input_with_a_message_naming_it(params, header, message):
    form = LogStreamForm(params, header, source=SOURCE)
    assert not form.is_valid()
    assert message in form.error_text()


def test_the_form_defaults_and_header_cursor():
    form = LogStreamForm({"level": "warning", "q": "disk", "backfill": "0"}, "5:10", source=SOURCE)
    assert form.is_valid(), form.errors
    query = form.log_query()
    matcher = query.line_filter.matcher
    assert matcher.level == "warning"
    assert matcher.query is not None
    assert matcher.query.pattern == "disk"
    assert query.backfill == 0
    assert query.fmt == "html"
    assert query.after == Cursor(5, 10)
    default = LogStreamForm({}, source=SOURCE)
    assert default.is_valid()
    assert default.log_query().backfill == 100
    assert default.log_query().after is None


def test_demo_log_writes_levels_requests_json_and_tracebacks(tmp_path: Path):
    path = tmp_path / "demo.log"
    call_command("demo_log", path=path, rate=100000, count=400, rotate_every=300, seed=3)
    rotated = path.with_name("demo.log.1")
    texts = rotated.read_text().splitlines() + path.read_text().splitlines()
    assert len(rotated.read_text().splitlines()) >= 300
    lines = parse_texts(texts)
    assert {line.level for line in lines} >= {"debug", "info", "warning", "error"}
    assert any(line.json for line in lines)
    assert any(line.continuation for line in lines)
    assert any('HTTP/1.1" ' in line.text for line in lines)
