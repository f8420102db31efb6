"""A ``redis:`` source's download is redacted for staff without the unredacted permission.

A line goes through the real path: a ``Shipper`` writes it to a real Redis,
the ASGI app's download view reads it back with ``XRANGE``. In the
PostgreSQL/Redis pass the Redis is the pass's own (``REDIS_URL``); in the
plain pass a private one is started, so the test runs in both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.logs.redis.shipper import Shipper
from streams.logs.redis.stream import connect
from tests.logs.redis.support import write_lines
from tests.support.asgi import StreamCall
from tests.support.services import redis_server
from tests.support.wait import async_wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LINE = "ERROR login failed for ada@example.com with Authorization: Bearer abcdef0123456789xyz"
REDACTED = "ERROR login failed for [REDACTED:email] with Authorization: Bearer [REDACTED:bearer]"


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """The pass's Redis when it has one, else a private one for this test."""
    if getattr(settings, "REDIS_URL", ""):
        yield str(settings.REDIS_URL)
        return
    with redis_server() as url:
        settings.REDIS_URL = url
        yield url


@pytest.fixture
def stream(redis_url: str, settings: Any) -> str:
    """A stream of this test's own (the pass's Redis is shared), as the source ``web``."""
    name = f"download-{uuid.uuid4().hex[:12]}"
    settings.STREAMBOARD_LOGS = {"web": f"redis:{name}"}
    return name


async def ship(redis_url: str, stream: str, log: Path, lines: list[str]) -> None:
    """Ship ``lines`` with the real shipper until Redis holds every one."""
    await asyncio.to_thread(write_lines, log, lines)
    client = connect(redis_url)
    shipper = Shipper(client, stream, log, "web-1", watcher="poll")
    task = asyncio.create_task(shipper.run())
    try:
        await async_wait_until(
            lambda: shipper.shipped_lines == len(lines), what="the lines shipped"
        )
    finally:
        shipper.stop()
        await task
        await client.aclose()


async def download(cookie: str) -> bytes:
    request = StreamCall("/logs/web/download", cookie)
    await request.start()
    assert request.status == 200
    assert 'filename="web.log"' in request.headers["content-disposition"]
    body = await request.read_until(lambda b: b.endswith(b"INFO after\n"))
    await request.hang_up()
    return body


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("staff", REDACTED), ("unredacted", LINE)],
    ids=["staff-redacted", "permitted-unredacted"],
)
async def test_a_shipped_line_downloads_redacted_unless_the_user_may_see_it_unredacted(
    redis_url: str,
    stream: str,
    tmp_path: Path,
    staff_cookie: str,
    unredacted_cookie: str,
    persona: str,
    expected: str,
):
    cookie = {"staff": staff_cookie, "unredacted": unredacted_cookie}[persona]
    await ship(redis_url, stream, tmp_path / "app.log", ["INFO before", LINE, "INFO after"])
    body = (await download(cookie)).decode()
    assert body == f"web-1 INFO before\nweb-1 {expected}\nweb-1 INFO after\n"
