"""The log pages (overview, list, live tail) and the raw download, through Django's test client."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.test import Client, override_settings

from tests.support.http_body import read_head

pytestmark = pytest.mark.django_db

CONTENT = b"2026-11-25 10:00:00 INFO app: started\n2026-11-25 10:00:01 ERROR app: boom\n"


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture(autouse=True)
def sources(log_file: Path, tmp_path: Path):
    with override_settings(STREAMBOARD_LOGS={"app": log_file, "later": tmp_path / "not-yet.log"}):
        yield


def body(response) -> bytes:
    """The whole body, reading an async streaming response the way the server would."""
    if not response.streaming:
        return bytes(response.content)

    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in response.streaming_content])
        finally:
            response.close()

    return async_to_sync(read)()


def test_log_page_connects_one_stream_with_the_controls(staff_client: Client):
    response = staff_client.get("/logs/app/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("sse-connect=") == 1
    assert 'sse-connect="/streams/logs/app/?backfill=200"' in html
    assert 'hx-ext="sse"' in html
    assert re.search(r'sse-swap="lines,skipped,notice"', html)
    for control in ("log-level", "log-q", "log-pause", "log-follow", "log-clear", "log-status"):
        assert f'id="{control}"' in html
    assert 'href="/logs/app/download"' in html
    assert "streamboard/logpage.js" in html
    assert "hx-sse-2" in html


def test_log_page_presets_valid_filters_from_the_query(staff_client: Client):
    response = staff_client.get("/logs/app/", {"level": "error", "q": "boom"})
    html = response.content.decode()
    assert 'sse-connect="/streams/logs/app/?backfill=200&amp;level=error&amp;q=boom"' in html
    assert '<option value="error" selected>' in html
    assert 'value="boom"' in html


def test_log_page_drops_an_unknown_level_instead_of_failing(staff_client: Client):
    response = staff_client.get("/logs/app/", {"level": "loud"})
    assert response.status_code == 200
    assert 'sse-connect="/streams/logs/app/?backfill=200"' in response.content.decode()


def test_log_page_for_a_file_not_created_yet_says_so(staff_client: Client):
    response = staff_client.get("/logs/later/")
    assert response.status_code == 200
    assert "does not exist yet" in response.content.decode()


@pytest.mark.parametrize("url", ["/", "/logs/", "/logs/app/", "/logs/app/download"])
def test_anonymous_users_are_redirected_to_the_login(anonymous_client: Client, url: str):
    response = anonymous_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("url", ["/", "/logs/", "/logs/app/", "/logs/app/download"])
def test_non_staff_users_are_redirected_to_the_login(plain_client: Client, url: str):
    response = plain_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("url", ["/logs/nope/", "/logs/nope/download"])
def test_unknown_source_is_404(staff_client: Client, url: str):
    assert staff_client.get(url).status_code == 404


def test_download_of_a_missing_file_is_404(staff_client: Client):
    assert staff_client.get("/logs/later/download").status_code == 404


def test_pages_refuse_post(staff_client: Client):
    assert staff_client.post("/logs/app/").status_code == 405


def test_overview_has_one_stream_and_a_card_per_source(staff_client: Client):
    response = staff_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("sse-connect=") == 1
    assert 'sse-connect="/streams/overview/"' in html
    assert 'sse-swap="source-app"' in html
    assert 'sse-swap="source-later"' in html
    assert 'href="/logs/app/"' in html


def test_log_index_lists_sources_by_name_without_paths(staff_client: Client, log_file: Path):
    response = staff_client.get("/logs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/logs/app/"' in html
    assert 'href="/logs/later/"' in html
    assert str(log_file.parent) not in html
    assert "not created yet" in html


# The permission is read in another thread: it must be committed.
@pytest.mark.django_db(transaction=True)
def test_download_serves_the_raw_file(unredacted_client: Client):
    response = unredacted_client.get("/logs/app/download")
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"].startswith("text/plain")
    assert "attachment" in response["Content-Disposition"]
    assert 'filename="app.log"' in response["Content-Disposition"]
    assert body(response) == CONTENT


# The permission is read in another thread: it must be committed.
@pytest.mark.django_db(transaction=True)
def test_download_answers_a_range_with_206_and_those_bytes(unredacted_client: Client):
    response = unredacted_client.get("/logs/app/download", HTTP_RANGE="bytes=10-29")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-29/{len(CONTENT)}"
    assert body(response) == CONTENT[10:30]


# The permission is read in another thread: it must be committed.
@pytest.mark.django_db(transaction=True)
def test_download_resumes_from_an_offset_to_the_end(unredacted_client: Client):
    offset = len(CONTENT) // 2
    response = unredacted_client.get("/logs/app/download", HTTP_RANGE=f"bytes={offset}-")
    assert response.status_code == 206
    assert body(response) == CONTENT[offset:]


@pytest.mark.live
def test_head_on_the_live_server_sends_the_length_but_no_body(
    live_server_factory, unredacted_cookie: str, log_file: Path
):
    server = live_server_factory(env={"STREAMBOARD_LOGS": f"app={log_file}"})
    request = "{method} /logs/app/download HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        # HEAD then GET on one connection: if HEAD leaked a body, the bytes
        # after its head would be that body instead of the GET's status line.
        for method in ("HEAD", "GET"):
            sock.sendall(
                request.format(method=method, host=server.host, cookie=unredacted_cookie).encode()
            )
        head, rest = read_head(sock, b"")
        assert head.startswith(b"HTTP/1.1 200")
        assert f"content-length: {len(CONTENT)}".encode() in head.lower()
        second, rest = read_head(sock, rest)
        assert second.startswith(b"HTTP/1.1 200"), second
        while len(rest) < len(CONTENT):
            rest += sock.recv(65536)
        assert rest == CONTENT
