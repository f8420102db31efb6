"""RE2 line filters: q/re/exclude/level, block scans that agree with lines, 400-ready errors."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.logs.files.cursor import parse_texts
from streams.logs.patterns import (
    MAX_PATTERN,
    LineFilterForm,
    LineMatcher,
    PatternError,
    compile_regex,
    line_matcher_from,
)


def test_q_is_a_case_insensitive_substring_including_non_ascii():
    matcher = LineMatcher.build(q="Payment")
    assert matcher.matches_text("PAYMENT failed")
    assert matcher.matches_text(b"card payment ok")
    assert not matcher.matches_text("pay ment")
    assert LineMatcher.build(q="ÉCHEC").matches_text("paiement échec")
    # A query is literal: regular-expression characters mean themselves.
    assert LineMatcher.build(q="a.c(").matches_text("x a.c( y")
    assert not LineMatcher.build(q="a.c").matches_text("abc")


def test_re_and_exclude_and_level_combine():
    matcher = LineMatcher.build(re=r"order \d+", exclude="retry", level="warning")
    error, retry, info = parse_texts(
        ["ERROR order 12 failed", "ERROR order 13 failed, retry", "INFO order 14 done"]
    )
    assert matcher.matches(error)
    assert not matcher.matches(retry)
    assert not matcher.matches(info)
    assert LineMatcher().matches(info)
    assert not LineMatcher().active
    assert matcher.active


def test_anchors_mean_the_start_and_end_of_a_line():
    matcher = LineMatcher.build(re=r"^ERROR .*done$")
    assert matcher.matches_text("ERROR it is done")
    assert not matcher.matches_text("an ERROR it is done")
    block = b"INFO x\nERROR it is done\nERROR not finished\n"
    assert [block[s:e] for s, e in matcher.candidate_lines(block)] == [b"ERROR it is done"]


def test_spans_are_merged_character_ranges_of_q_and_re():
    matcher = LineMatcher.build(q="pay", re=r"payment \d+")
    text = "é payment 12 and pay"
    assert matcher.spans(text) == [(2, 12), (17, 20)]
    assert LineMatcher.build(re="x*").spans("abc") == []  # empty matches are not highlighted
    # From the raw line (as search gives it): the same character ranges.
    assert matcher.spans(text.encode()) == [(2, 12), (17, 20)]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", "missing )"),
        (r"(a)\1", "backreference"),
        ("(?=x)", "look-ahead"),
        ("(?<!x)y", "look-behind"),
        ("a{2,1}", "bad repetition"),
    ],
)
def test_a_pattern_re2_refuses_is_an_error_naming_the_parameter(pattern: str, reason: str):
    with pytest.raises(PatternError, match=r"^exclude: not a valid regular expression"):
        compile_regex(pattern, parameter="exclude")


def test_a_pattern_longer_than_the_limit_is_refused():
    with pytest.raises(PatternError, match=f"^re: longer than {MAX_PATTERN}"):
        compile_regex("a" * (MAX_PATTERN + 1))


def test_a_pattern_too_big_to_compile_is_refused_not_built():
    with pytest.raises(PatternError, match=r"^re: not a valid regular expression"):
        compile_regex("((a{100}){100}){100}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"re": "("}, "re: not a valid regular expression"),
        ({"exclude": "[z-a]"}, "exclude: not a valid regular expression"),
        ({"level": "loud"}, "level: Select a valid choice"),
        ({"q": "x" * (MAX_PATTERN + 1)}, "q: Ensure this value has at most"),
    ],
)
def test_the_form_names_the_bad_parameter(params: dict[str, str], message: str):
    form = LineFilterForm(params)
    assert not form.is_valid()
    assert form.error_text().startswith(message)
    with pytest.raises(PatternError, match=f"^{message.split(':')[0]}:"):
        line_matcher_from(params)


def test_the_form_builds_a_matcher():
    matcher = line_matcher_from({"q": "Pay", "re": "^ERROR", "exclude": "test", "level": "error"})
    (line,) = parse_texts(["ERROR payment declined"])
    assert matcher.matches(line)
    assert matcher.level == "error"
    assert not line_matcher_from({}).active


def test_a_catastrophic_pattern_answers_in_linear_time():
    """``(a+)+$`` over a long line of ``a`` then ``b``: exponential for a backtracking engine."""
    line = "a" * 200_000 + "b"
    pathological = LineMatcher.build(re="(a+)+$")
    linear = LineMatcher.build(re="b$")

    def best_of(matcher: LineMatcher) -> float:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            matcher.matches_text(line)
            timings.append(time.perf_counter() - started)
        return min(timings)

    baseline = best_of(linear)
    assert not pathological.matches_text(line)
    # Generous: RE2 is within a small factor of the trivial pattern; a
    # backtracking engine would not finish this line in any test's lifetime.
    assert best_of(pathological) < 50 * baseline + 0.25
    # Through the block scan too (the search path).
    block = (line + "\n").encode() * 5
    started = time.perf_counter()
    assert list(pathological.candidate_lines(block)) == []
    assert time.perf_counter() - started < 5 * (50 * baseline + 0.25)


LINES = st.lists(
    st.text(alphabet="abAB x\t.é", max_size=12),
    max_size=30,
)
PATTERNS = st.sampled_from(
    ["", "a", "^a", "b$", "a.b", r"a\s+b", "[^x]*b", "A|é", "^$", "x*", r"\Aab", r"b\z", "(?i)ab"]
)


@settings(max_examples=400, deadline=None)
@given(lines=LINES, q=st.sampled_from(["", "a", "B", "ab", "é", " "]), re=PATTERNS, ex=PATTERNS)
def test_a_block_scan_finds_exactly_the_lines_that_match_on_their_own(
    lines: list[str], q: str, re: str, ex: str
):
    matcher = LineMatcher.build(q=q, re=re, exclude=ex)
    block = "".join(line + "\n" for line in lines).encode()
    found = [block[s:e].decode() for s, e in matcher.candidate_lines(block)]
    assert found == [line for line in lines if matcher.matches_text(line)]
    # A block whose last line has no line break (an empty last line would be no line).
    if lines and lines[-1]:
        block = block[:-1]
        found = [block[s:e].decode() for s, e in matcher.candidate_lines(block)]
        assert found == [line for line in lines if matcher.matches_text(line)]
