"""No output path leaks a value a redaction rule covers (the default rules, a staff user).

One line holding an e-mail address, a bearer token, an API key and a
Luhn-valid card number goes through every way a line leaves the server: the
live stream (HTML and JSON), the text stream, the search stream, the
filtered and the raw download, and the overview card. None may carry any of
the four values; each must carry the line itself (redacted), so a path that
sent nothing cannot pass. A user with ``streams.view_unredacted_logs`` sees
the line as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.asgi import StreamCall

pytestmark = pytest.mark.django_db(transaction=True)

SECRETS = (
    "ada@example.com",
    "abcdefghijklmnop0123",  # the bearer token
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",  # the API key
    "4111 1111 1111 1111",  # Luhn-valid
)
LINE = (
    "2026-12-01 10:00:00,000 ERROR checkout by ada@example.com "
    "Authorization: Bearer abcdefghijklmnop0123 "
    "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc card 4111 1111 1111 1111"
)

#: (path, query, what marks the end of the part that carries the line)
PATHS = [
    ("/streams/logs/app/", "format=html", b"event: lines"),
    ("/streams/logs/app/", "format=json", b"event: lines"),
    ("/streams/logs/app/", "format=html&q=checkout&re=ERROR", b"event: lines"),
    ("/streams/logs/app.txt", "", b"\n"),
    ("/streams/logs/app/search", "q=checkout", b"event: done"),
    ("/logs/app/download", "q=checkout", None),
    ("/logs/app/download", "", None),
    ("/streams/overview/", "", b"event: source-app"),
]


@pytest.fixture
def source(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"app": path}
    path.write_text(f"INFO before\n{LINE}\n")
    return path


async def read(path: str, cookie: str, query: str, end: bytes | None) -> str:
    request = StreamCall(path, cookie, query)
    await request.start()
    assert request.status == 200, path
    if end is None:  # a download: read it to its end
        message: dict[str, Any] = {"more_body": True}
        while message.get("more_body", False):
            message = await request.communicator.receive_output(10)
            request.body += message.get("body", b"")
        await request.communicator.wait(10)
        return bytes(request.body).decode()
    body = await request.read_until(lambda b: end in b and b"checkout" in b and b.endswith(b"\n"))
    await request.hang_up()
    return body.decode()


@pytest.mark.parametrize(("path", "query", "end"), PATHS)
async def test_no_path_leaks_a_covered_value(
    source: Path, staff_cookie: str, path: str, query: str, end: bytes | None
):
    body = await read(path, staff_cookie, query, end)
    assert "by [REDACTED:email] Authorization: Bearer [REDACTED:bearer]" in body
    assert "api_key=[REDACTED:api_key] card [REDACTED:card]" in body
    for secret in SECRETS:
        assert secret not in body, (path, query, secret)


async def test_a_filter_cannot_find_a_hidden_value(source: Path, staff_cookie: str):
    request = StreamCall("/streams/logs/app/", staff_cookie, "format=json&q=ada@example")
    await request.start()
    body = await request.read_until(lambda b: b"event: lines" in b and b.endswith(b"\n\n"))
    await request.hang_up()
    assert b'{"lines":[]}' in body
    search = StreamCall("/streams/logs/app/search", staff_cookie, "q=ada@example")
    await search.start()
    body = await search.read_until(lambda b: b"event: done" in b and b.endswith(b"\n\n"))
    await search.hang_up()
    assert b"event: result" not in body
    assert b"0 results" in body


@pytest.mark.parametrize(("path", "query", "end"), PATHS)
async def test_the_permission_shows_the_line_as_written(
    source: Path, unredacted_cookie: str, path: str, query: str, end: bytes | None
):
    body = await read(path, unredacted_cookie, query, end)
    assert "ada@example.com" in body
    assert "sk_live_4eC39HqLyjWDarjtT1zdp7dc" in body
