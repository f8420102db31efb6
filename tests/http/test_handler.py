"""Whole body parts under a flow-controlled server; Django's 64 KiB slices anywhere else.

In-process (``ApplicationCommunicator``) the scope is ours to write: with the
``streamboard.flow_control`` extension each export chunk is one message,
without it every message is Django's slice of at most 64 KiB, and the bytes
are the same. Over a socket, the real server offers the extension and frames
each chunk as one HTTP chunk, with the same bytes as plain ASGI.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import User

from dashboard.asgi import application
from streams.exports.producer import ExportEncodingError
from streams.http.handler import FLOW_CONTROL
from tests.http.test_server import seed_wide
from tests.support.demo_orders import make_customer, make_order, make_orders
from tests.support.http_body import get
from tests.support.live import LiveServer
from tests.support.personas import session_cookie

URL = "/exports/dashboard.order.ndjson"
SLICE = 2**16
WAIT = 30.0


@pytest.fixture
def cookie(transactional_db: None, superuser: User) -> str:
    return session_cookie(superuser)


def scope(path: str, cookie: str, *, flow_control: bool) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {FLOW_CONTROL: {}} if flow_control else {},
    }


async def body_messages(path: str, cookie: str, *, flow_control: bool) -> list[bytes]:
    """Every ``http.response.body`` payload of one GET, in order (the last one empty)."""
    communicator = ApplicationCommunicator(
        application, scope(path, cookie, flow_control=flow_control)
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(WAIT)
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    parts = []
    while True:
        message = await communicator.receive_output(WAIT)
        assert message["type"] == "http.response.body"
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await communicator.wait(WAIT)
    return parts


async def test_export_chunks_go_out_whole_only_when_the_server_offers_flow_control(
    cookie: str,
) -> None:
    await sync_to_async(seed_wide)(3_000)  # about 1.9 KiB a row: 2000-row chunks of ~3.8 MiB
    whole = await body_messages(URL, cookie, flow_control=True)
    sliced = await body_messages(URL, cookie, flow_control=False)
    assert b"".join(whole) == b"".join(sliced)
    assert b"".join(whole).count(b"\n") == 3_000
    assert [len(part) > SLICE for part in whole[:-1]] == [True, True]  # one per chunk
    assert max(len(part) for part in sliced) <= SLICE
    assert len(sliced) > 50


async def test_a_failure_midway_raises_out_of_the_application_with_whole_parts(
    cookie: str,
) -> None:
    def make() -> None:
        make_orders(2_500)
        make_order(make_customer(), 2_501, metadata={"too_big": 2**70})

    await sync_to_async(make)()
    with pytest.raises(ExportEncodingError):
        await body_messages(URL, cookie, flow_control=True)


@pytest.mark.live
def test_the_server_frames_each_chunk_as_one_http_chunk_with_the_bytes_of_plain_asgi(
    live: LiveServer, cookie: str
) -> None:
    make_orders(5_000)
    response = get(live, URL, cookie)
    assert response.complete
    sizes = response.extra["chunk_sizes"]
    assert isinstance(sizes, list)
    assert len(sizes) == 3  # 2000 + 2000 + 1000 rows, not 64 KiB slices
    assert min(sizes[:2]) > SLICE
    plain = b"".join(async_to_sync(body_messages)(URL, cookie, flow_control=False))
    assert response.body == plain
