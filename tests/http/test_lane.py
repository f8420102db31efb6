"""The stream lane answers as Django's middleware chain would, and steps aside when unsure.

Each case is asked twice, of the same site with and without
``StreamLaneMiddleware`` in ``MIDDLEWARE``: the status, every header and the
body must be the same. What the lane saves (the thread hops) is measured in
docs/benchmarks.md ("Connect cost"), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient

from streams.http.lane import StreamLaneMiddleware

pytestmark = pytest.mark.django_db(transaction=True)

LANE = "streams.http.lane.StreamLaneMiddleware"


class Stamp:
    """A site's own middleware, unknown to the lane: it must still run on streams."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        response["X-Stamp"] = "seen"
        return response


@pytest.fixture
def log(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    path.write_text("INFO one\n")
    settings.STREAMBOARD_LOGS = {"test": path}
    return path


async def ask(path: str, cookie: str | None) -> tuple[int, dict[str, str], bytes]:
    client = AsyncClient()
    if cookie is not None:
        name, _, value = cookie.partition("=")
        client.cookies[name] = value
    response = await client.get(path)
    try:
        body = b"" if response.streaming else response.content
        return response.status_code, dict(response.items()), body
    finally:
        response.close()


async def unused(request: HttpRequest) -> HttpResponse:
    raise AssertionError("not called")


def without_lane(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != LANE]


@pytest.mark.parametrize(
    ("path", "signed_in", "status"),
    [
        ("/streams/logs/test/clients", True, 200),
        ("/streams/logs/test/?format=json&backfill=1", True, 200),
        ("/streams/logs/nope/", True, 404),
        ("/streams/logs/test/?level=loud", True, 400),
        ("/streams/logs/test/", False, 403),
    ],
)
async def test_a_stream_through_the_lane_answers_as_djangos_chain_would(
    log: Path, settings: Any, staff_cookie: str, path: str, signed_in: bool, status: int
) -> None:
    assert StreamLaneMiddleware(unused).active  # the site's middleware is all known to it
    cookie = staff_cookie if signed_in else None
    through_lane = await ask(path, cookie)
    without_lane(settings)
    through_chain = await ask(path, cookie)
    assert through_lane[0] == status
    if path.endswith("clients"):
        # The JSON names the serving process, the same here; nothing else differs.
        assert b'"clients": 0' in through_lane[2]
    assert through_lane == through_chain


async def test_a_request_step_that_answers_ends_the_lane_as_it_ends_the_chain(
    log: Path, settings: Any, staff_cookie: str
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    through_lane = await ask("/streams/logs/test/", staff_cookie)
    without_lane(settings)
    assert through_lane[0] == 301
    assert through_lane == await ask("/streams/logs/test/", staff_cookie)


async def test_a_middleware_the_lane_does_not_know_makes_it_step_aside(
    log: Path, settings: Any, staff_cookie: str
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.Stamp"]
    status, headers, _ = await ask("/streams/logs/test/clients", staff_cookie)
    assert (status, headers.get("X-Stamp")) == (200, "seen")
    assert not StreamLaneMiddleware(unused).active
