"""Redaction of secrets in log lines on their way out of the server.

Rules come from ``STREAMBOARD_REDACT`` (read by ``streams.conf``): built-in
kinds by name, plus custom patterns. ``Redactor.redact`` is a pure function
from a line to the line with each covered value replaced by
``[REDACTED:<kind>]``. Choices:

* **Fast when nothing matches**, which is nearly every line: all rules are
  joined into one RE2 alternation searched once per line (or once per block
  of lines, ``redact_bytes``); only a line it hits goes through the rules
  one by one. A line without a secret is returned as the same object.
* **RE2** for the built-ins and the custom patterns alike: a custom pattern
  cannot make redaction (applied to every line that leaves) super-linear.
* **Only the secret goes**: a rule may name the part that is secret (group 1
  of a built-in, the group named ``secret`` of a custom pattern), so
  ``api_key=[REDACTED:api_key]`` and ``Bearer [REDACTED:bearer]`` still say
  what was there.
* **Card numbers** must pass the Luhn check (and start like a card, 2-6), so
  most long numbers (ids, epoch milliseconds) are left alone; about one 16-digit
  number in ten that starts with 2-6 still passes and is redacted, the safe
  side of the trade.
* **Who sees unredacted lines** is a permission, ``UNREDACTED_PERMISSION``
  (``streams.view_unredacted_logs``), checked with ``user.has_perm``; the
  permission row itself comes with the view wiring (a ``Meta.permissions``
  entry and its migration). Superusers have it implicitly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import re2
from django.core.exceptions import ImproperlyConfigured

from streams import conf

#: The permission that lets a user see lines unredacted (for the view wiring).
UNREDACTED_PERMISSION: Final = "streams.view_unredacted_logs"


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_number(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


@dataclass(frozen=True)
class _Pattern:
    """One regular expression of a rule; ``secret`` is the group replaced (0: all of it)."""

    source: str
    secret: int = 0
    check: Callable[[str], bool] | None = None


_SECRET_NAMES: Final = (
    r"api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|client[_-]?secret|secret[_-]?key|secret|password|passwd|pwd"
)

#: The built-in kinds, by the name used in ``STREAMBOARD_REDACT``.
KINDS: Final[dict[str, tuple[_Pattern, ...]]] = {
    "email": (_Pattern(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),),
    "bearer": (_Pattern(r"(?i:\b(?:bearer|basic))[ \t]+([A-Za-z0-9._~+/-]{8,}=*)", 1),),
    "api_key": (
        # Stripe-style keys (sk_live_..., pk_test_..., rk_live_...).
        _Pattern(r"\b((?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,})", 1),
        # AWS access key ids.
        _Pattern(r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b", 1),
        # GitHub and Slack tokens.
        _Pattern(r"\b(gh[pousr]_[A-Za-z0-9]{30,})", 1),
        _Pattern(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})", 1),
        # api_key=..., "password": "...", secret: ...
        _Pattern(rf"(?i:\b(?:{_SECRET_NAMES}))[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"'&,;]{{3,}})", 1),
    ),
    "card": (
        # Digits in one run, or in groups of four (Amex: 4-6-5).
        _Pattern(r"\b[2-6]\d{12,18}\b", 0, _card_number),
        _Pattern(r"\b[2-6]\d{3}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?\b", 0, _card_number),
        _Pattern(r"\b3\d{3}[ -]\d{6}[ -]\d{5}\b", 0, _card_number),
    ),
}


class _Compiled:
    """A ``_Pattern`` compiled by RE2, with the replacement of its rule."""

    def __init__(self, pattern: _Pattern, replacement: str) -> None:
        self.regex: Any = _compile(pattern.source)
        self.secret = pattern.secret
        self.check = pattern.check
        self.replacement = replacement

    def apply(self, text: str) -> str:
        pieces: list[str] = []
        last = 0
        for match in self.regex.finditer(text):
            if self.check is not None and not self.check(match.group(0)):
                continue
            start, end = match.span(self.secret)
            if start < 0 or end <= start:
                continue
            pieces.append(text[last:start])
            pieces.append(self.replacement)
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)


def _compile(source: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(source, options)


class _AnyMatch(Protocol):
    def search(self, text: str | bytes, pos: int = ..., endpos: int = ...) -> object | None: ...


class Redactor:
    """Applies a set of rules to lines (see the module docstring)."""

    def __init__(self, rules: Sequence[tuple[_Pattern, str]]) -> None:
        self._rules = [_Compiled(pattern, replacement) for pattern, replacement in rules]
        self._any: _AnyMatch | None = (
            _compile("|".join(f"(?:{pattern.source})" for pattern, _ in rules)) if rules else None
        )

    @property
    def active(self) -> bool:
        return self._any is not None

    def redact(self, text: str) -> str:
        """``text`` with every value a rule covers replaced; the same object if none."""
        if self._any is None or self._any.search(text) is None:
            return text
        for rule in self._rules:
            text = rule.apply(text)
        return text

    def redact_bytes(self, block: bytes) -> bytes:
        """A block of UTF-8 lines redacted line by line; the same object if nothing matches.

        The whole block is searched at once; each line a match starts in is
        redacted on its own (so a pattern never joins two lines).
        """
        if self._any is None:
            return block
        size = len(block)
        pieces: list[bytes] = []
        last = 0
        position = 0
        while position < size:
            match: Any = self._any.search(block, position, size)
            if match is None:
                break
            found = match.start()
            line_start = block.rfind(b"\n", 0, found) + 1
            line_start = max(line_start, position)
            line_end = block.find(b"\n", found)
            if line_end < 0:
                line_end = size
            line = block[line_start:line_end].decode("utf-8", "surrogateescape")
            redacted = self.redact(line)
            if redacted is not line:
                pieces.append(block[last:line_start])
                pieces.append(redacted.encode("utf-8", "surrogateescape"))
                last = line_end
            position = line_end + 1
        if not pieces:
            return block
        pieces.append(block[last:])
        return b"".join(pieces)


def build_redactor(settings: Sequence[conf.RedactSetting]) -> Redactor:
    """A ``Redactor`` for configured rules; ``ImproperlyConfigured`` on an unknown kind."""
    rules: list[tuple[_Pattern, str]] = []
    for item in settings:
        if isinstance(item, str):
            patterns = KINDS.get(item)
            if patterns is None:
                raise ImproperlyConfigured(
                    f"STREAMBOARD_REDACT: unknown kind {item!r}; "
                    f"the kinds are {', '.join(sorted(KINDS))} (or a custom pattern)."
                )
            rules.extend((pattern, f"[REDACTED:{item}]") for pattern in patterns)
            continue
        name, source = item["name"], item["pattern"]
        try:
            compiled = _compile(source)
        except re2.error as error:
            raise ImproperlyConfigured(
                f"STREAMBOARD_REDACT: the pattern of {name!r} is not valid for RE2 ({error})."
            ) from None
        secret = int(compiled.groupindex.get("secret", 0))
        rules.append((_Pattern(source, secret), item.get("replacement", f"[REDACTED:{name}]")))
    return Redactor(rules)


_Frozen = tuple[str | tuple[tuple[str, str], ...], ...]


@functools.cache
def _cached(frozen: _Frozen) -> Redactor:
    return build_redactor([item if isinstance(item, str) else dict(item) for item in frozen])


def redactor() -> Redactor:
    """The redactor of the current settings (built once per distinct setting, e.g. in tests)."""
    frozen: _Frozen = tuple(
        rule if isinstance(rule, str) else tuple(sorted(rule.items()))
        for rule in conf.redact_rules()
    )
    return _cached(frozen)


def redactor_for(user: Any) -> Redactor | None:
    """The redactor for ``user``'s lines, ``None`` if they may see them unredacted."""
    if user is not None and user.has_perm(UNREDACTED_PERMISSION):
        return None
    return redactor()
