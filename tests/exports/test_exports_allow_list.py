"""The export allow-list: what is exportable, and the checks that refuse secrets."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dashboard.models import Order
from streams.exports.allow_list import exportables, get_exportable
from streams.exports.checks import check_export_allow_list


def check_ids(exports: dict[str, object]) -> list[str]:
    with override_settings(STREAMBOARD_EXPORTS=exports):
        return [message.id or "" for message in check_export_allow_list()]


def test_a_configured_model_is_exportable_with_its_listed_fields() -> None:
    exportable = get_exportable("dashboard.order")
    assert exportable.model is Order
    assert exportable.label == "dashboard.order"
    assert exportable.fields[:3] == ("id", "uuid", "reference")


def test_the_label_is_case_insensitive() -> None:
    assert get_exportable("Dashboard.Order").label == "dashboard.order"


@pytest.mark.parametrize("label", ["auth.group", "dashboard.nothing", "nothing.order", "bad"])
def test_unconfigured_or_unknown_models_raise_lookup_error(label: str) -> None:
    with pytest.raises(LookupError):
        get_exportable(label)


def test_exportables_lists_every_configured_model() -> None:
    assert {e.label for e in exportables()} == {
        "dashboard.order",
        "dashboard.customer",
        "auth.user",
    }


def test_the_default_configuration_passes_the_checks() -> None:
    assert check_export_allow_list() == []


def test_the_user_allow_list_has_no_password() -> None:
    assert "password" not in get_exportable("auth.user").fields


@pytest.mark.parametrize(
    "field", ["password", "api_token", "secret", "session_key", "key", "password_hash"]
)
def test_secret_looking_fields_fail_the_check_and_the_lookup(field: str) -> None:
    assert "streams.E001" in check_ids({"auth.user": ["id", field]})
    with (
        override_settings(STREAMBOARD_EXPORTS={"auth.user": ["id", field]}),
        pytest.raises(ImproperlyConfigured),
    ):
        get_exportable("auth.user")


def test_names_that_merely_contain_key_are_not_secret() -> None:
    assert check_ids({"dashboard.customer": ["id", "monkey"]}) == ["streams.E002"]


def test_unknown_fields_and_relations_that_are_not_columns_fail_the_check() -> None:
    assert check_ids({"auth.user": ["id", "nope"]}) == ["streams.E002"]
    assert check_ids({"auth.user": ["id", "groups"]}) == ["streams.E002"]


def test_unknown_models_and_bad_labels_fail_the_check() -> None:
    assert check_ids({"dashboard.nothing": ["id"]}) == ["streams.E003"]
    assert check_ids({"Dashboard.Order": ["id"]}) == ["streams.E003"]


def test_malformed_entries_fail_the_check() -> None:
    assert check_ids({"dashboard.order": "id,amount"}) == ["streams.E005"]
    assert check_ids({"dashboard.order": []}) == ["streams.E005"]


def test_a_model_without_an_integer_primary_key_fails_the_check() -> None:
    assert check_ids({"sessions.session": ["expire_date"]}) == ["streams.E004"]
