"""``GET /exports/<label>.<format>`` in process: access, validation, headers, body."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.http import StreamingHttpResponse
from django.test import AsyncClient, override_settings
from django.urls import reverse

from dashboard.models import Order
from tests.support.demo_orders import make_orders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def url(label: str = "dashboard.order", fmt: str = "ndjson") -> str:
    return reverse("export-stream", kwargs={"label": label, "fmt": fmt})


def grant(user: User, codename: str) -> None:
    user.user_permissions.add(Permission.objects.get(codename=codename))


@pytest.fixture
def viewer(staff_user: User) -> User:
    grant(staff_user, "view_order")
    return staff_user


async def client_for(user: User | None) -> AsyncClient:
    client = AsyncClient()
    if user is not None:
        await client.aforce_login(user)
    return client


async def body(response: Any) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[union-attr]


async def test_anonymous_gets_403_not_a_redirect() -> None:
    response = await (await client_for(None)).get(url())
    assert response.status_code == 403


async def test_a_plain_user_gets_403(plain_user: User) -> None:
    response = await (await client_for(plain_user)).get(url())
    assert response.status_code == 403


async def test_staff_without_the_view_permission_gets_403(staff_user: User) -> None:
    response = await (await client_for(staff_user)).get(url())
    assert response.status_code == 403
    assert b"dashboard.order" in response.content


async def test_staff_with_the_view_permission_gets_the_stream(viewer: User) -> None:
    await sync_to_async(make_orders)(3)
    response = await (await client_for(viewer)).get(url())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == 'attachment; filename="dashboard.order.ndjson"'
    assert response["Cache-Control"] == "no-cache"
    lines = (await body(response)).splitlines()
    assert [orjson.loads(line)["reference"] for line in lines] == [
        "ORD-00000001",
        "ORD-00000002",
        "ORD-00000003",
    ]


async def test_a_superuser_may_export_without_explicit_permissions(superuser: User) -> None:
    response = await (await client_for(superuser)).get(url())
    assert response.status_code == 200


async def test_csv_is_served_with_a_header_row(viewer: User) -> None:
    await sync_to_async(make_orders)(2)
    response = await (await client_for(viewer)).get(url(fmt="csv") + "?fields=id,amount")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="dashboard.order.csv"'
    rows = list(csv.reader(io.StringIO((await body(response)).decode(), newline="")))
    assert rows[0] == ["id", "amount"]
    assert [row[1] for row in rows[1:]] == ["0.01", "0.02"]


@pytest.mark.parametrize(
    "label",
    ["dashboard.nosuchmodel", "nosuchapp.order", "auth.group", "sessions.session"],
)
async def test_unknown_or_unconfigured_models_are_404(superuser: User, label: str) -> None:
    response = await (await client_for(superuser)).get(url(label))
    assert response.status_code == 404


@pytest.mark.parametrize("fmt", ["json", "xml", "NDJSON", "csv2"])
async def test_an_unknown_format_is_404(superuser: User, fmt: str) -> None:
    response = await (await client_for(superuser)).get(f"/exports/dashboard.order.{fmt}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("fields=id,password", "password cannot be exported"),
        ("fields=id,nope", "nope cannot be exported"),
        ("fields=", "comma-separated"),
        ("fields=id,id", "twice"),
        ("colour=red", "unknown parameter colour"),
        ("status=lost", "'lost' is not one of"),
        ("amount__gte=lots", "amount__gte"),
        ("amount__gte=NaN", "decimal number"),
        ("quantity=99999999999999999999", "quantity"),
        ("created_at__gte=yesterday", "created_at__gte"),
        ("metadata=1", "unknown parameter metadata"),
        ("status__gte=paid", "unknown parameter status__gte"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=99999999999999999999999", "after"),
        ("status=paid&status=shipped", "more than once"),
        ("customer=", "needs a value"),
    ],
)
async def test_bad_parameters_are_400_with_a_clear_message(
    viewer: User, query: str, message: str
) -> None:
    response = await (await client_for(viewer)).get(f"{url()}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert message in response.content.decode()


async def test_filters_and_after_select_rows(viewer: User) -> None:
    orders = await sync_to_async(make_orders)(30)
    client = await client_for(viewer)
    params = {"status": "shipped", "quantity__gte": "4", "quantity__lte": "20"}
    response = await client.get(url(), {**params, "after": str(orders[8].pk)})
    assert response.status_code == 200
    got = [orjson.loads(line)["id"] for line in (await body(response)).splitlines()]
    expected = [
        o.pk
        for o in orders
        if o.status == Order.Status.SHIPPED and 4 <= o.quantity <= 20 and o.pk > orders[8].pk
    ]
    assert got == expected
    assert got  # the filter selects something, so the comparison means something


async def test_a_post_is_refused(viewer: User) -> None:
    response = await (await client_for(viewer)).post(url())
    assert response.status_code == 405


async def test_auth_user_export_never_contains_the_password(superuser: User) -> None:
    response = await (await client_for(superuser)).get(url("auth.user"))
    assert response.status_code == 200
    data = await body(response)
    record = orjson.loads(data.splitlines()[0])
    assert record["username"] == "root"
    assert "password" not in record
    assert superuser.password.encode() not in data
    assert b"pbkdf2" not in data


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_the_stream_sends_one_body_chunk_per_configured_chunk_of_rows(
    viewer: User, fmt: str
) -> None:
    await sync_to_async(make_orders)(7)
    with override_settings(STREAMBOARD_EXPORT_CHUNK_SIZE=3):
        response = await (await client_for(viewer)).get(url(fmt=fmt) + "?fields=id")
        assert response.status_code == 200
        assert isinstance(response, StreamingHttpResponse)
        parts = [bytes(part) async for part in response.streaming_content]
    assert [part.count(b"\n") for part in parts] == ([4, 3, 1] if fmt == "csv" else [3, 3, 1])
