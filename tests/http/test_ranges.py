"""Resumable downloads: Range parsing and the 200/206/304/416 answers, on a real file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.http import Http404, StreamingHttpResponse
from django.test import RequestFactory

from streams.http.ranges import parse_range, ranged_file_response

CONTENT = bytes(range(256)) * 4000  # 1,024,000 bytes: several chunks


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=95-1000", (95, 99)),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_parse_range_reads_single_byte_ranges(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_parse_range_refuses_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(ValueError, match="range"):
        parse_range(header, 100)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "export.ndjson"
    path.write_bytes(CONTENT)
    return path


async def fetch(path: Path, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = RequestFactory().get("/download", headers=headers)
    response = await ranged_file_response(
        request, path, filename="export.ndjson", content_type="application/x-ndjson"
    )
    body = b""
    if isinstance(response, StreamingHttpResponse):
        body = b"".join([chunk async for chunk in response])
    response.close()
    return response.status_code, dict(response.items()), body


async def test_whole_file_is_an_attachment_with_length_and_etag(data_file: Path) -> None:
    status, headers, body = await fetch(data_file)
    assert status == 200
    assert body == CONTENT
    assert headers["Content-Length"] == str(len(CONTENT))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Disposition"] == 'attachment; filename="export.ndjson"'
    assert headers["ETag"].startswith('"')


async def test_first_half_then_rest_concatenate_to_the_whole_file(data_file: Path) -> None:
    half = len(CONTENT) // 2
    status1, headers1, first = await fetch(data_file, Range=f"bytes=0-{half - 1}")
    status2, headers2, rest = await fetch(
        data_file, Range=f"bytes={half}-", **{"If-Range": headers1["ETag"]}
    )
    assert (status1, status2) == (206, 206)
    assert headers1["Content-Range"] == f"bytes 0-{half - 1}/{len(CONTENT)}"
    assert headers2["Content-Range"] == f"bytes {half}-{len(CONTENT) - 1}/{len(CONTENT)}"
    assert first + rest == CONTENT


async def test_if_range_with_a_stale_etag_gets_the_whole_new_file(data_file: Path) -> None:
    _, headers, _ = await fetch(data_file)
    data_file.write_bytes(CONTENT[::-1])  # noqa: ASYNC240 (a test's set-up)
    status, _, body = await fetch(data_file, Range="bytes=10-", **{"If-Range": headers["ETag"]})
    assert status == 200
    assert body == CONTENT[::-1]


async def test_unsatisfiable_range_answers_416_with_the_size(data_file: Path) -> None:
    status, headers, _ = await fetch(data_file, Range=f"bytes={len(CONTENT)}-")
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(CONTENT)}"


async def test_matching_if_none_match_answers_304(data_file: Path) -> None:
    _, headers, _ = await fetch(data_file)
    status, _, body = await fetch(data_file, **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")


async def test_missing_file_is_404(tmp_path: Path) -> None:
    with pytest.raises(Http404):
        await fetch(tmp_path / "nope")


async def test_unread_response_still_closes_its_file(data_file: Path) -> None:
    request = RequestFactory().get("/download")
    response = await ranged_file_response(
        request, data_file, filename="x", content_type="text/plain"
    )
    response.close()  # pytest turns an unclosed file (ResourceWarning) into an error
