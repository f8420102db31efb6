"""A ``redis:`` source's download is redacted for staff without the unredacted permission.

A line goes through the real path: a ``Shipper`` writes it to a real Redis,
the ASGI app's download view reads it back with ``XRANGE``. In the
PostgreSQL/Redis pass the Redis is the pass's own (``REDIS_URL``); in the
plain pass a private one is started, so the test runs in both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.logs.redis.support import ship
from tests.support.asgi import StreamCall

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LINE = "ERROR login failed for ada@example.com with Authorization: Bearer abcdef0123456789xyz"
REDACTED = "ERROR login failed for [REDACTED:email] with Authorization: Bearer [REDACTED:bearer]"


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
