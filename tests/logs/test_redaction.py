"""Redaction rules from STREAMBOARD_REDACT: built-in kinds, Luhn, custom patterns, speed."""

from __future__ import annotations

import time

import pytest
import re2
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dashboard import settings as site_settings
from streams import conf
from streams.logs.redaction import (
    KINDS,
    UNREDACTED_PERMISSION,
    build_redactor,
    luhn_valid,
    redactor,
    redactor_for,
)

ALL = build_redactor(conf.DEFAULT_REDACT)


@pytest.mark.parametrize(
    ("template", "secret", "kind"),
    [
        ("login by {} ok", "alice.smith+ops@mail.example.co.uk", "email"),
        ("Authorization: Bearer {}", "eyJhbGciOi.J9.sig-_x", "bearer"),
        ("authorization: basic {}", "dXNlcjpwYXNzd29yZA==", "bearer"),
        ("charge with {}", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
        ("{} in js", "pk_test_TYooMQauvdEDq54NiTphI7jx", "api_key"),
        ("aws key {} used", "AKIAIOSFODNN7EXAMPLE", "api_key"),
        ("token {}", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "api_key"),
        ("GET /x?api_key={}&y=1", "abc123def", "api_key"),
        ('{{"password": "{}", "user": "bob"}}', "hunter22", "api_key"),
        ("client_secret: {}", "s3cr3t-value", "api_key"),
        ("X-Api-Key={}", "QWERTY12345", "api_key"),
        ("paid with {} today", "4111111111111111", "card"),
        ("paid with {} exp 2027", "4111 1111 1111 1111", "card"),
        ("amex {} ok", "3782-822463-10005", "card"),
        ("mastercard {}.", "5555-5555-5555-4444", "card"),
    ],
)
def test_each_built_in_kind_hides_its_value(template: str, secret: str, kind: str):
    redacted = ALL.redact(template.format(secret))
    assert secret not in redacted
    assert redacted == template.format(f"[REDACTED:{kind}]")


def test_only_the_secret_goes_and_the_rest_of_the_line_stays():
    assert ALL.redact("GET /x?api_key=abc123def&y=1") == "GET /x?api_key=[REDACTED:api_key]&y=1"
    assert ALL.redact("Authorization: Bearer abcdefghij") == (
        "Authorization: Bearer [REDACTED:bearer]"
    )


@pytest.mark.parametrize(
    "line",
    [
        "order 4111111111111112 shipped",  # fails Luhn
        "ts=1796220000123 epoch milliseconds",  # starts with 1
        "id 12345678901234567890123 is too long for a card",
        "phone 555-1234 is not a card",
        "tokens are counted: token count 12",
        "the bearer of bad news",
        "plain line with nothing secret",
    ],
)
def test_lines_without_a_covered_value_are_left_alone(line: str):
    assert ALL.redact(line) is line


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_custom_patterns_replace_the_match_or_its_secret_group():
    custom = build_redactor(
        [
            {"name": "order_token", "pattern": r"ot_[a-z0-9]{6,}"},
            {
                "name": "session",
                "pattern": r"session=(?P<secret>[A-F0-9]+)",
                "replacement": "<hidden>",
            },
        ]
    )
    assert custom.redact("use ot_abc123xyz now") == "use [REDACTED:order_token] now"
    assert custom.redact("session=DEADBEEF; path=/") == "session=<hidden>; path=/"
    # Built-ins are not on unless listed.
    assert custom.redact("mail bob@example.com") == "mail bob@example.com"


def test_redact_bytes_redacts_line_by_line_and_returns_an_untouched_block_as_is():
    block = b"first ok\nmail bob@example.com twice bob@example.com\nlast ok\nno newline a@b.io"
    assert ALL.redact_bytes(block) == (
        b"first ok\nmail [REDACTED:email] twice [REDACTED:email]\nlast ok\n"
        b"no newline [REDACTED:email]"
    )
    clean = b"nothing\nto see\n" * 100
    assert ALL.redact_bytes(clean) is clean


def test_a_pattern_never_joins_two_lines_in_a_block():
    custom = build_redactor([{"name": "pair", "pattern": r"a\s+b"}])
    assert custom.redact_bytes(b"a\nb\n") == b"a\nb\n"
    assert custom.redact_bytes(b"x a  b\n") == b"x [REDACTED:pair]\n"


def test_no_rules_means_no_redaction():
    empty = build_redactor([])
    assert not empty.active
    line = "mail bob@example.com"
    assert empty.redact(line) is line


def test_an_unknown_kind_is_refused_listing_the_kinds():
    with pytest.raises(ImproperlyConfigured, match="unknown kind 'phone'; the kinds are api_key"):
        build_redactor(["phone"])


def test_an_invalid_custom_pattern_is_refused():
    with pytest.raises(ImproperlyConfigured, match="the pattern of 'x' is not valid for RE2"):
        build_redactor([{"name": "x", "pattern": "(?=look-ahead)"}])


@pytest.mark.parametrize(
    "value",
    ["email", [{"pattern": "x"}], [{"name": "x", "pattern": "y", "colour": "red"}], [3]],
)
def test_a_badly_shaped_setting_is_refused(value: object):
    with override_settings(STREAMBOARD_REDACT=value), pytest.raises(ImproperlyConfigured):
        conf.redact_rules()


def test_the_setting_decides_and_a_change_takes_effect():
    with override_settings(STREAMBOARD_REDACT=["email"]):
        assert redactor().redact("a@b.io sk_live_4eC39HqLyjWDarjtT1zdp7dc") == (
            "[REDACTED:email] sk_live_4eC39HqLyjWDarjtT1zdp7dc"
        )
    with override_settings(STREAMBOARD_REDACT=[]):
        assert not redactor().active


def test_the_default_is_every_built_in_kind():
    assert set(conf.DEFAULT_REDACT) == set(KINDS)
    assert list(conf.DEFAULT_REDACT) == site_settings.STREAMBOARD_REDACT


@pytest.mark.django_db
def test_the_permission_decides_who_sees_unredacted_lines(
    superuser: User, plain_user: User, staff_user: User
):
    assert UNREDACTED_PERMISSION == "streams.view_unredacted_logs"
    assert redactor_for(superuser) is None
    assert redactor_for(plain_user) is not None
    assert redactor_for(staff_user) is not None
    assert redactor_for(None) is not None


def test_a_line_without_secrets_costs_about_one_re2_search():
    """The fast path: one combined search per line, nothing allocated when nothing matches."""
    lines = [
        f"2026-12-02 14:00:{i % 60:02d},000 INFO worker-{i % 7} GET /api/orders/{i} 200"
        for i in range(20_000)
    ]
    single = re2.compile("zzzz")

    def best_of(run) -> float:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
        return min(timings)

    baseline = best_of(lambda: [single.search(line) for line in lines])
    redact = ALL.redact
    elapsed = best_of(lambda: [redact(line) for line in lines])
    assert all(redact(line) is line for line in lines)
    assert elapsed < 5 * baseline + 0.05
