"""Downloads: just the matching lines over current + rotated files, and the raw file redacted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from tests.logs.test_history import BASE, log_lines, open_fds_to, write
from tests.support.asgi import StreamCall
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source(tmp_path: Path, settings: Any) -> Path:
    """app.log.2.gz (lines 0-99), app.log.1 (100-199), app.log (200-299, a traceback per 50)."""
    path = tmp_path / "app.log"
    settings.STREAMBOARD_LOGS = {"app": path}
    write(tmp_path / "app.log.2.gz", log_lines(0, 100))
    write(tmp_path / "app.log.1", log_lines(100, 100))
    write(path, log_lines(200, 100, every_traceback=50))
    return path


def body(response: Any) -> bytes:
    """The whole body, reading an async streaming response the way the server would."""
    if not response.streaming:
        return bytes(response.content)

    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in response.streaming_content])
        finally:
            response.close()

    return async_to_sync(read)()


def numbers(content: bytes) -> list[int]:
    return [
        int(line.split(b" line ")[1].split()[0])
        for line in content.splitlines()
        if b" payment=" in line
    ]


def iso(offset: float) -> str:
    return datetime.fromtimestamp(BASE + offset, UTC).isoformat()


def test_a_filter_downloads_the_matching_lines_of_every_file_oldest_first(
    source: Path, staff_client: Client
):
    response = staff_client.get("/logs/app/download?level=error")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'filename="app-filtered.log"' in response["Content-Disposition"]
    assert "ETag" not in response
    content = body(response)
    assert numbers(content) == list(range(0, 300, 10))
    # A traceback goes with its header (ERROR line 250 has one).
    assert b"line 250 payment=yes\nTraceback (most recent call last):\n" in content
    assert b"ValueError: refund 250\n" in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=LINE%2012%20", [12]),
        ("re=line%201[0-9]5%20&exclude=payment=no", [115, 125, 145, 155, 175, 185]),
        ("re=line%20(a%2B)%2B$", []),
    ],
)
def test_text_filters_apply_to_downloads(
    source: Path, staff_client: Client, query: str, expected: list[int]
):
    assert numbers(body(staff_client.get(f"/logs/app/download?{query}"))) == expected


def test_since_and_until_bound_the_download(source: Path, staff_client: Client):
    response = staff_client.get(
        "/logs/app/download", {"since": iso(95), "until": iso(104), "q": "line"}
    )
    assert numbers(body(response)) == list(range(95, 105))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("re=(", b"re: not a valid regular expression"),
        ("exclude=x(%3F!y)", b"exclude: not a valid regular expression"),
        ("since=soon", b"since: 'soon' is not"),
        ("level=loud", b"level:"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    source: Path, staff_client: Client, query: str, message: bytes
):
    response = staff_client.get(f"/logs/app/download?{query}")
    assert response.status_code == 400
    assert message in response.content


def test_with_redaction_on_the_raw_download_is_redacted_whole_without_ranges(
    source: Path, staff_client: Client
):
    with source.open("a") as f:
        f.write("INFO card 4111 1111 1111 1111 for ada@example.com\n")
    response = staff_client.get("/logs/app/download", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "none"
    assert "ETag" not in response
    assert 'filename="app.log"' in response["Content-Disposition"]
    content = body(response)
    assert content.startswith(source.read_bytes()[:100])
    assert content.endswith(b"INFO card [REDACTED:card] for [REDACTED:email]\n")


def test_a_user_with_the_permission_gets_the_raw_bytes_with_ranges(
    source: Path, unredacted_client: Client
):
    with source.open("a") as f:
        f.write("INFO mail ada@example.com\n")
    response = unredacted_client.get("/logs/app/download", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206
    assert "ETag" in response
    assert body(response) == source.read_bytes()[:10]


async def test_a_client_that_goes_stops_the_reading_and_closes_the_files(
    tmp_path: Path, settings: Any, staff_cookie: str
):
    path = write(tmp_path / "big.log", log_lines(0, 300_000))
    settings.STREAMBOARD_LOGS = {"big": path}
    request = StreamCall("/logs/big/download", staff_cookie, "q=payment")
    await request.start()
    assert request.status == 200
    await request.read_until(lambda b: len(b) > 0)
    await request.hang_up()
    await async_wait_until(lambda: not open_fds_to(tmp_path), 10, "the files closed")
