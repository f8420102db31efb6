"""Validation of a log stream's query: filters, backfill, format and the resume cursor.

Everything here is client input: a bad value is a 400 with a message naming
the parameter, never a 500. The filters are ``streams.logs.patterns``'
(``level``, ``q`` a case-insensitive substring, ``re`` and ``exclude``
regular expressions run by RE2, so no pattern can hang the server; an
invalid one is a 400 naming its parameter).
``Last-Event-ID`` comes from the header (what EventSource sends on its own)
or, for clients that cannot set headers, the ``last_event_id`` parameter;
the form is given the source the URL names and lets it parse the cursor
(``CursorParser``, which every ``LogSource`` is), so it knows no kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, QueryDict

from streams.logs.encoding import FORMATS, Format
from streams.logs.follow import LineFilter
from streams.logs.lines import LogCursor
from streams.logs.patterns import MAX_PATTERN, LineFilterForm

DEFAULT_BACKFILL: Final = 100
MAX_BACKFILL: Final = 1000
MAX_QUERY: Final = MAX_PATTERN
#: Lines a permalink (``at=``) shows before its line.
AT_CONTEXT_LINES: Final = 50


class CursorParser(Protocol):
    """What the form needs of a source: its cursor's parser and shape (``LogSource`` has both)."""

    @property
    def cursor_syntax(self) -> str: ...

    def parse_cursor(self, text: str) -> LogCursor: ...


class CursorField(forms.Field):
    """A cursor's text as sent (stripped); empty means "no cursor". The form parses it.

    The parsing needs the source the URL names, so it is the form's
    (``parse_cursor``): the field stays the same for every request, which
    lets a form share its fields (``shared_fields``).
    """

    def to_python(self, value: Any) -> str | None:
        text = str(value).strip() if value is not None else ""
        return text or None


def parse_cursor(source: CursorParser, text: str | None) -> LogCursor | None:
    """``text`` parsed by ``source``, or ``ValidationError`` naming what a cursor looks like."""
    if text is None:
        return None
    try:
        return source.parse_cursor(text)
    except ValueError:
        raise ValidationError(
            f"must be a cursor sent by this stream ({source.cursor_syntax})", code="invalid"
        ) from None


class _SharedFields(dict[str, forms.Field]):
    """A form class's fields, which ``BaseForm.__init__``'s deep copy leaves shared."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, forms.Field]:
        return dict(self)


def shared_fields[F: type[forms.Form]](form_class: F) -> F:
    """Let every instance of ``form_class`` use the class's field objects, not copies.

    Django deep-copies a form's fields for each instance, so that one
    instance may change its own (a widget, the choices). A stream's query
    form never does, and is never rendered: it is made once per connect,
    where the copy was most of the form's 117 us (48 us without it;
    docs/benchmarks.md, "NDJSON at the floor's per-row cost, and cheaper
    connects").
    """
    form_class.base_fields = _SharedFields(form_class.base_fields)
    return form_class


@dataclass(frozen=True)
class LogQuery:
    line_filter: LineFilter
    backfill: int
    fmt: Format
    after: LogCursor | None
    #: A permalink's line (``at=``): the stream opens with the lines around it.
    at: LogCursor | None = None


@shared_fields
class LogStreamForm(LineFilterForm):
    """The filters (``level``, ``q``, ``re``, ``exclude``, ``host``), then the stream's own."""

    host = forms.RegexField(
        regex=r"^\S{1,200}$",
        required=False,
        strip=False,
        error_messages={"invalid": "must be a host label (1 to 200 characters, no spaces)"},
    )
    backfill = forms.IntegerField(required=False, min_value=0, max_value=MAX_BACKFILL)
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], required=False)
    last_event_id = CursorField(required=False)
    at = CursorField(required=False)

    def __init__(
        self,
        data: QueryDict | Mapping[str, Any],
        last_event_id: str | None = None,
        *,
        source: CursorParser,
    ) -> None:
        params = data.copy() if isinstance(data, QueryDict) else dict(data)
        if last_event_id is not None:
            # The header wins over the parameter: it is what the browser resends.
            params["last_event_id"] = last_event_id
        super().__init__(params)
        self.source = source

    def clean_last_event_id(self) -> LogCursor | None:
        return parse_cursor(self.source, self.cleaned_data.get("last_event_id"))

    def clean_at(self) -> LogCursor | None:
        return parse_cursor(self.source, self.cleaned_data.get("at"))

    @classmethod
    def from_request(cls, request: HttpRequest, source: CursorParser) -> LogStreamForm:
        return cls(request.GET, request.headers.get("Last-Event-ID"), source=source)

    def error_text(self) -> str:
        messages = []
        for name, errors in self.errors.items():
            label = "Last-Event-ID" if name == "last_event_id" else name
            for error in errors:
                text = str(error)
                named = name == "__all__" or text.startswith(f"{label}:")
                messages.append(text if named else f"{label}: {text}")
        return "\n".join(messages) + "\n"

    def log_query(self) -> LogQuery:
        data = self.cleaned_data
        backfill = data.get("backfill")
        return LogQuery(
            line_filter=LineFilter(self.line_matcher(), host=data.get("host") or ""),
            backfill=DEFAULT_BACKFILL if backfill is None else backfill,
            fmt=cast(Format, data.get("format") or "html"),
            after=data.get("last_event_id"),
            at=data.get("at"),
        )


@shared_fields
class PermalinkForm(forms.Form):
    """The log page's ``at``: a cursor of this source (the page validates it before the stream)."""

    at = CursorField(required=False)

    def __init__(self, data: QueryDict | Mapping[str, Any], *, source: CursorParser) -> None:
        super().__init__({"at": data.get("at", "")})
        self.source = source

    def clean_at(self) -> LogCursor | None:
        return parse_cursor(self.source, self.cleaned_data.get("at"))

    def error_text(self) -> str:
        return "".join(f"at: {error}\n" for error in self.errors.get("at", []))
