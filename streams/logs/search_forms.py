"""Validation of a history search's query: the line filters, the time range, the limit.

Every parameter is client input: a bad one is a 400 whose message names it
(``re: not a valid regular expression (...)``, ``since: 'soon' is not ...``),
decided before the stream starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from django import forms

from streams.logs.patterns import LineFilterForm, LineMatcher
from streams.logs.search import DEFAULT_LIMIT
from streams.logs.timestamps import TimeRange, TimeRangeForm

#: The most results one search may ask for.
MAX_LIMIT: Final = 10_000


@dataclass(frozen=True)
class SearchQuery:
    matcher: LineMatcher
    time_range: TimeRange
    limit: int


class LogSearchForm(LineFilterForm, TimeRangeForm):
    """``level``, ``q``, ``re``, ``exclude``, ``since``, ``until`` and ``limit``."""

    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def search_query(self) -> SearchQuery:
        limit = self.cleaned_data.get("limit")
        return SearchQuery(
            self.line_matcher(), self.time_range(), DEFAULT_LIMIT if limit is None else limit
        )

    def error_text(self) -> str:
        return LineFilterForm.error_text(self)
