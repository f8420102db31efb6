"""The stored job query: a typed value that reads back every shape the action ever stored."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict

from streams.exports.changelist import changelist_params
from streams.exports.job_query import JobQuery


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"params": {}, "pks": [3, 1, 2]}, JobQuery(pks=(3, 1, 2))),
        (
            {"params": {}, "changelist": "status__exact=paid&q=x"},
            JobQuery(changelist="status__exact=paid&q=x"),
        ),
        ({"params": {"fields": "id,amount"}}, JobQuery(params={"fields": "id,amount"})),
        ({}, JobQuery()),
        (None, JobQuery()),
        (
            {"params": {}, "pks": [4], "fields": ["amount", "id"]},
            JobQuery(pks=(4,), fields=("amount", "id")),
        ),
    ],
)
def test_it_reads_what_the_action_stores(stored: Any, expected: JobQuery) -> None:
    assert JobQuery.from_json(stored) == expected


@pytest.mark.parametrize(
    "query",
    [
        JobQuery.selection([5, 7]),
        JobQuery.of_changelist("status__exact=shipped"),
        JobQuery.of_changelist(""),
        JobQuery(params={"fields": "id", "after": "10"}),
        JobQuery(),
        JobQuery.selection([1]).with_fields(["note", "id"]),
        JobQuery.of_changelist("q=a").with_fields(["id"]),
    ],
)
def test_to_json_and_back_is_the_same_query(query: JobQuery) -> None:
    assert JobQuery.from_json(query.to_json()) == query


def test_the_json_is_the_shape_stored_before() -> None:
    assert JobQuery.selection([2, 9]).to_json() == {"params": {}, "pks": [2, 9]}
    assert JobQuery.of_changelist("q=a").to_json() == {"params": {}, "changelist": "q=a"}
    assert JobQuery().to_json() == {"params": {}}


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ([1, 2], "JSON object"),
        ({"pk": [1]}, "unknown job query keys: pk"),
        ({"pks": "1,2"}, "list of integers"),
        ({"pks": [1, True]}, "list of integers"),
        ({"changelist": ["a"]}, "query string"),
        ({"params": {"fields": 3}}, "strings"),
        ({"pks": [1], "changelist": ""}, "not both"),
        ({"fields": "id,note"}, "list of field names"),
        ({"fields": ["id", 3]}, "list of field names"),
        ({"fields": []}, "at least one field"),
        ({"params": {"fields": "id"}, "fields": ["id"]}, "either in params or as fields"),
    ],
)
def test_a_malformed_query_is_a_value_error_saying_what(stored: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobQuery.from_json(stored)


def test_the_changelist_keeps_filters_and_search_but_not_page_or_order() -> None:
    query = QueryDict("status__exact=paid&q=ORD&o=-3&p=2&_to_field=id&status__exact=shipped")
    assert changelist_params(query) == "status__exact=paid&status__exact=shipped&q=ORD"


def test_stored_without_fields_a_job_exports_every_allowed_field() -> None:
    # Jobs stored before the confirmation page: no "fields" key, no "fields" parameter,
    # and the export query form then takes the whole allow-list.
    assert "fields" not in JobQuery.from_json({"params": {}, "pks": [1]}).export_params()
    assert JobQuery.selection([1]).to_json() == {"params": {}, "pks": [1]}


def test_the_chosen_fields_reach_the_export_params_in_their_order() -> None:
    query = JobQuery.of_changelist("q=a").with_fields(["note", "id"])
    assert query.to_json() == {"params": {}, "changelist": "q=a", "fields": ["note", "id"]}
    assert query.export_params() == {"fields": "note,id"}
    assert JobQuery(params={"after": "3"}, fields=("id",)).export_params() == {
        "after": "3",
        "fields": "id",
    }
