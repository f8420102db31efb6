"""The format table: one row per export format, and everything else follows it."""

from __future__ import annotations

from typing import get_args

import pytest

from streams.exports.checks import check_job_formats, job_format_errors
from streams.exports.formats import (
    EXPORT_FORMATS,
    FORMATS,
    ExportFormat,
    format_for_suffix,
    get_format,
)
from streams.jobs.models import ExportJob


def test_the_table_lists_exactly_the_export_format_literals() -> None:
    assert tuple(FORMATS) == get_args(ExportFormat) == EXPORT_FORMATS


@pytest.mark.parametrize("name", EXPORT_FORMATS)
def test_each_format_answers_with_its_own_content_type(name: ExportFormat) -> None:
    spec = get_format(name)
    assert spec.name == name
    assert spec.response_class.content_type_default == spec.content_type  # type: ignore[attr-defined]
    assert format_for_suffix(spec.extension) is spec


def test_csv_starts_with_a_header_row_and_ndjson_with_nothing() -> None:
    assert get_format("csv").header(("id", "note")) == b"id,note\r\n"
    assert get_format("ndjson").header(("id", "note")) == b""


@pytest.mark.parametrize("name", ["json", "NDJSON", "", "csv2", "ndjson "])
def test_an_unknown_format_is_a_lookup_error_naming_the_known_ones(name: str) -> None:
    with pytest.raises(LookupError, match="ndjson, csv"):
        get_format(name)
    assert format_for_suffix(name) is None


def test_the_job_models_choices_match_the_table() -> None:
    assert check_job_formats() == []
    assert [value for value, _ in ExportJob.Format.choices] == list(EXPORT_FORMATS)


def test_a_model_choice_missing_from_the_table_fails_the_check() -> None:
    table = [("ndjson", "NDJSON"), ("csv", "CSV")]
    assert job_format_errors(table, table) == []
    errors = job_format_errors([("ndjson", "NDJSON")], table)
    assert [error.id for error in errors] == ["streams.E006"]
    assert "csv" in errors[0].msg
