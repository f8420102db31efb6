"""The admin's export confirmation page: the count, the choice of format and fields, the job.

Through Django's test client on the real admin: the action's first POST shows
the page, its confirmation stores a job whose query carries the chosen fields,
and running the job (in-process, ``execute_job``) writes exactly those fields
in that order. A field outside the allow-list, or none at all, is a 400 and no
job (``streams.exports.admin_form`` says why refused rather than ignored).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_tasks_db.models import DBTaskResult

from dashboard.models import Order
from streams.exports.allow_list import get_exportable
from streams.exports.task import execute_job
from streams.jobs.models import ExportJob
from tests.support.admin_export import confirm_export
from tests.support.demo_orders import make_orders

pytestmark = [pytest.mark.services, pytest.mark.django_db]

CHANGELIST = "/admin/dashboard/order/"
ACTION = "export_in_background"
ORDER_FIELDS = get_exportable("dashboard.order").fields


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    settings.STREAMBOARD_EXPORT_CHUNK_SIZE = 7
    return Path(settings.STREAMBOARD_EXPORT_DIR)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def action_data(selected: list[int], *, select_across: bool = False) -> dict[str, Any]:
    """What the changelist's action form posts."""
    return {
        "action": ACTION,
        "index": "0",
        "select_across": "1" if select_across else "0",
        "_selected_action": [str(pk) for pk in selected],
    }


def confirmation_data(
    selected: list[int], *, select_across: bool = False, **choice: Any
) -> dict[str, Any]:
    """What the confirmation page posts: its hidden inputs (no ``index``) and the choice."""
    data = action_data(selected, select_across=select_across)
    del data["index"]
    return {**data, **confirm_export(**choice)}


class InputCollector(HTMLParser):
    """The ``<input>``s inside the confirmation form: name -> [(type, value, checked)]."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, list[tuple[str, str, bool]]] = {}
        self.in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "export-form":
            self.in_form = True
        if tag == "input" and self.in_form and attributes.get("name"):
            self.inputs.setdefault(str(attributes["name"]), []).append(
                (str(attributes["type"]), str(attributes.get("value")), "checked" in attributes)
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False


def form_inputs(html: str) -> dict[str, list[tuple[str, str, bool]]]:
    collector = InputCollector()
    collector.feed(html)
    return collector.inputs


def shown_on_page(client: Client, query: str = "") -> list[int]:
    page = client.get(f"{CHANGELIST}{query}")
    assert page.status_code == 200
    return list(page.context["cl"].result_list.values_list("pk", flat=True))


def test_the_action_is_described_as_opening_a_page(root_client: Client) -> None:
    make_orders(1)
    page = root_client.get(CHANGELIST)
    assert (
        b'<option value="export_in_background">Export in the background\xe2\x80\xa6</option>'
        in (page.content)
    )


def test_the_action_shows_the_count_of_a_selection_with_every_field_checked_and_ndjson(
    root_client: Client,
) -> None:
    orders = make_orders(30)
    chosen = [orders[2].pk, orders[5].pk, orders[17].pk]
    response = root_client.post(CHANGELIST, action_data(chosen))
    assert response.status_code == 200
    assert response.templates[0].name == "admin/streams/export_confirmation.html"
    html = response.content.decode()
    assert 'data-count="3"' in html
    assert "The <strong>3</strong> selected orders" in html
    form = response.context["form"]
    assert form["format"].value() == "ndjson"
    assert list(form["fields"].value()) == list(ORDER_FIELDS)
    inputs = form_inputs(html)
    assert inputs["format"] == [("radio", "ndjson", True), ("radio", "csv", False)]
    assert inputs["fields"] == [("checkbox", name, True) for name in ORDER_FIELDS]
    assert 'id="export-fields-toggle"' in html  # select-all
    # The selection rides along; nothing is stored yet.
    assert inputs["_selected_action"] == [("hidden", str(pk), False) for pk in chosen]
    assert inputs["select_across"] == [("hidden", "0", False)]
    assert inputs["action"] == [("hidden", ACTION, False)]
    assert inputs["post"] == [("hidden", "yes", False)]
    assert f'action="{CHANGELIST}"' in html
    assert "No, take me back" in html
    assert '<li aria-current="page">Export in the background</li>' in html
    assert not ExportJob.objects.exists()


def test_select_all_on_a_filtered_changelist_shows_the_filtered_count(
    root_client: Client,
) -> None:
    make_orders(60)
    query = "?status__exact=shipped&q=ORD-0000002&o=-3"
    shown = shown_on_page(root_client, query)
    assert len(shown) == 3
    response = root_client.post(f"{CHANGELIST}{query}", action_data(shown[:1], select_across=True))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-count="3"' in html
    assert "All <strong>3</strong> orders of the filtered list" in html
    assert form_inputs(html)["select_across"] == [("hidden", "1", False)]
    # The filters and search stay in the URL the form posts back to.
    assert 'action="/admin/dashboard/order/?status__exact=shipped&amp;q=ORD-0000002&amp;o=-3"' in (
        html
    )
    assert (
        "All <strong>60</strong>"
        in root_client.post(CHANGELIST, action_data(shown[:1], select_across=True)).content.decode()
    )


def test_csv_and_a_subset_of_fields_in_a_chosen_order_are_stored_and_exported_so(
    root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    orders = make_orders(20)
    chosen = sorted([orders[1].pk, orders[4].pk, orders[9].pk])
    fields = ["amount", "reference", "id"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root_client.post(CHANGELIST, confirmation_data(chosen, fmt="csv", fields=fields))
    assert response.status_code == 302, response.content[:500]
    job = ExportJob.objects.get()
    assert response["Location"] == f"/exports/{job.pk}/"
    assert len(callbacks) == 1
    assert job.format == "csv"
    assert job.query == {"params": {}, "pks": chosen, "fields": fields}
    assert DBTaskResult.objects.get().args_kwargs["args"] == [job.pk]

    assert execute_job(job.pk) == ExportJob.Status.SUCCEEDED
    job.refresh_from_db()
    path = job.result_path()
    assert path is not None
    assert path.name == f"job-{job.pk}.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == fields
    by_pk = {order.pk: order for order in Order.objects.filter(pk__in=chosen)}
    assert rows[1:] == [[str(by_pk[pk].amount), by_pk[pk].reference, str(pk)] for pk in chosen]


def test_select_all_with_ndjson_and_chosen_fields_exports_those_keys_in_that_order(
    root_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    make_orders(60)
    query = "?status__exact=shipped&q=ORD-0000002"
    shown = shown_on_page(root_client, query)
    fields = ["status", "id", "metadata"]
    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post(
            f"{CHANGELIST}{query}",
            confirmation_data(shown[:1], select_across=True, fields=fields),
        )
    assert response.status_code == 302, response.content[:500]
    job = ExportJob.objects.get()
    assert job.format == "ndjson"
    assert job.query == {
        "params": {},
        "changelist": "status__exact=shipped&q=ORD-0000002",
        "fields": fields,
    }
    assert execute_job(job.pk) == ExportJob.Status.SUCCEEDED
    job.refresh_from_db()
    path = job.result_path()
    assert path is not None
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [list(row) for row in rows] == [fields] * 3
    assert sorted(row["id"] for row in rows) == sorted(shown)
    assert all(row["status"] == "shipped" for row in rows)


@pytest.mark.parametrize(
    ("url", "model", "forged"),
    [
        (CHANGELIST, "dashboard.order", ["id", "bogus"]),
        ("/admin/auth/user/", "auth.user", ["username", "password"]),  # a real, secret column
    ],
)
def test_a_field_outside_the_allow_list_is_a_400_and_no_job(
    root_client: Client, superuser: User, url: str, model: str, forged: list[str]
) -> None:
    make_orders(3)
    pk = (
        Order.objects.values_list("pk", flat=True).first() if model != "auth.user" else superuser.pk
    )
    assert pk is not None
    response = root_client.post(url, confirmation_data([pk], fields=forged, model=model))
    assert response.status_code == 400
    assert not ExportJob.objects.exists()
    assert f"Select a valid choice. {forged[1]} is not one of the available choices." in (
        response.content.decode()
    )
    # The page is shown again, with the choice as posted (the forged field is not offered).
    assert f'value="{forged[1]}"' not in response.content.decode()


def test_no_field_chosen_is_a_400_asking_for_one_and_no_job(root_client: Client) -> None:
    make_orders(3)
    pk = Order.objects.values_list("pk", flat=True).first()
    assert pk is not None
    data = confirmation_data([pk], fmt="csv", fields=[])
    assert "fields" not in {key for key, value in data.items() if value}  # as a browser posts it
    response = root_client.post(CHANGELIST, data)
    assert response.status_code == 400
    assert "Choose at least one field." in response.content.decode()
    assert response.context["form"]["format"].value() == "csv"  # the choice is kept
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"fields": ["id", "id"]}, "A field is chosen twice."),
        ({"fmt": "xml"}, "Select a valid choice. xml is not one of the available choices."),
    ],
)
def test_a_repeated_field_or_an_unknown_format_is_a_400(
    root_client: Client, choice: dict[str, Any], message: str
) -> None:
    make_orders(3)
    pk = Order.objects.values_list("pk", flat=True).first()
    assert pk is not None
    response = root_client.post(CHANGELIST, confirmation_data([pk], **choice))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ExportJob.objects.exists()


def test_a_stored_field_the_allow_list_lost_since_fails_the_job_instead_of_leaving(
    root_client: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
    settings: Any,
) -> None:
    make_orders(3)
    pk = Order.objects.values_list("pk", flat=True).first()
    assert pk is not None
    with django_capture_on_commit_callbacks(execute=True):
        root_client.post(CHANGELIST, confirmation_data([pk], fields=["id", "note"]))
    job = ExportJob.objects.get()
    settings.STREAMBOARD_EXPORTS = {
        **settings.STREAMBOARD_EXPORTS,
        "dashboard.order": [name for name in ORDER_FIELDS if name != "note"],
    }
    assert execute_job(job.pk) == ExportJob.Status.FAILED
    job.refresh_from_db()
    assert "note cannot be exported" in job.error
    assert job.result_path() is None


def test_a_page_shown_again_keeps_the_posted_fields_first_in_their_order(
    root_client: Client,
) -> None:
    make_orders(3)
    pk = Order.objects.values_list("pk", flat=True).first()
    assert pk is not None
    response = root_client.post(
        CHANGELIST, confirmation_data([pk], fields=["note", "amount", "bogus"])
    )
    assert response.status_code == 400
    rest = [name for name in ORDER_FIELDS if name not in ("note", "amount")]
    assert form_inputs(response.content.decode())["fields"] == [
        ("checkbox", "note", True),
        ("checkbox", "amount", True),
        *[("checkbox", name, False) for name in rest],
    ]
