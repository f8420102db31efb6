"""``GET``/``HEAD /exports/<id>/download``: a finished job's file, like a log download."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from streams.jobs.models import ExportJob
from tests.support.export_worker import export_env
from tests.support.live import LiveServer

CONTENT = b'{"id":1}\n{"id":2}\n{"id":3}\n'


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    return Path(settings.STREAMBOARD_EXPORT_DIR)


def finished_job(user: User, export_dir: Path, fmt: str = "ndjson") -> ExportJob:
    job = ExportJob.objects.create(
        user=user,
        model_label="dashboard.order",
        format=fmt,
        status=ExportJob.Status.SUCCEEDED,
        rows_done=3,
        rows_total=3,
        bytes_written=len(CONTENT),
        finished_at=timezone.now(),
    )
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / job.final_name).write_bytes(CONTENT)
    ExportJob.objects.filter(pk=job.pk).update(file_name=job.final_name)
    job.refresh_from_db()
    return job


def body(response: Any) -> bytes:
    """The whole body, read as the server would (async), then the response closed."""
    if not response.streaming:
        return bytes(response.content)
    if not response.is_async:  # the test client empties a HEAD response's body
        return b"".join(response.streaming_content)

    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in response.streaming_content])
        finally:
            response.close()

    return async_to_sync(read)()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("ndjson", "application/x-ndjson"), ("csv", "text/csv; charset=utf-8")],
)
def test_get_serves_the_file_with_the_formats_content_type(
    staff_user: User, staff_client: Client, export_dir: Path, fmt: str, content_type: str
) -> None:
    job = finished_job(staff_user, export_dir, fmt)
    response = staff_client.get(f"/exports/{job.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert f'filename="dashboard.order-{job.pk}.{fmt}"' in response["Content-Disposition"]
    assert body(response) == CONTENT


@pytest.mark.django_db
def test_head_answers_the_same_headers_without_a_body(
    staff_user: User, staff_client: Client, export_dir: Path
) -> None:
    job = finished_job(staff_user, export_dir)
    got = staff_client.get(f"/exports/{job.pk}/download")
    head = staff_client.head(f"/exports/{job.pk}/download")
    assert head.status_code == 200
    for header in ("Content-Type", "Content-Length", "ETag", "Accept-Ranges"):
        assert head[header] == got[header], header
    assert head["Content-Length"] == str(len(CONTENT))
    assert body(head) == b""
    body(got)


@pytest.mark.django_db
def test_head_of_another_users_or_an_unfinished_job_is_a_404(
    superuser: User, staff_user: User, staff_client: Client, export_dir: Path
) -> None:
    theirs = finished_job(superuser, export_dir)
    running = ExportJob.objects.create(
        user=staff_user, model_label="dashboard.order", status=ExportJob.Status.RUNNING
    )
    assert staff_client.head(f"/exports/{theirs.pk}/download").status_code == 404
    assert staff_client.head(f"/exports/{running.pk}/download").status_code == 404


@pytest.mark.django_db
def test_other_methods_are_refused(
    staff_user: User, staff_client: Client, export_dir: Path
) -> None:
    job = finished_job(staff_user, export_dir)
    assert staff_client.post(f"/exports/{job.pk}/download").status_code == 405


def read_head(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    """One response head from ``sock``: (head, what came after it)."""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in buffer:
        assert time.monotonic() < deadline, buffer
        data = sock.recv(65536)
        assert data, f"closed after {buffer!r}"
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


@pytest.mark.live
def test_head_on_the_live_server_sends_the_length_but_no_body(
    live_server_factory: Callable[..., LiveServer],
    staff_cookie: str,
    staff_user: User,
    export_dir: Path,
) -> None:
    job = finished_job(staff_user, export_dir)
    server = live_server_factory(env=export_env())
    request = "{method} /exports/{pk}/download HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        # HEAD then GET on one connection: if HEAD leaked a body, the bytes
        # after its head would be that body instead of the GET's status line.
        for method in ("HEAD", "GET"):
            sock.sendall(
                request.format(
                    method=method, pk=job.pk, host=server.host, cookie=staff_cookie
                ).encode()
            )
        head, rest = read_head(sock, b"")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert f"content-length: {len(CONTENT)}".encode() in head.lower()
        second, rest = read_head(sock, rest)
        assert second.startswith(b"HTTP/1.1 200"), second
        while len(rest) < len(CONTENT):
            rest += sock.recv(65536)
        assert rest == CONTENT
