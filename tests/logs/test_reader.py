"""The file reader without asyncio: plain files, plain calls, every ``tail -F`` case."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import (
    NOTICE_ROTATED,
    NOTICE_TRUNCATED,
    FileReader,
    RangeReader,
    StepResult,
    decode,
)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "app.log"


@pytest.fixture
def reader(log: Path) -> Iterator[FileReader]:
    reader = FileReader(log)
    yield reader
    reader.close()


def texts(result: StepResult) -> list[str]:
    return [line.text for line in result.lines]


def append(path: Path, data: str) -> None:
    with path.open("a") as f:
        f.write(data)


def test_it_opens_after_the_last_complete_line_and_holds_a_partial_one(
    log: Path, reader: FileReader
):
    log.write_text("old\nhalf")
    reader.open_at_end()
    assert reader.cursor() == Cursor(log.stat().st_ino, 4)
    append(log, " done\nnext")
    result = reader.step()
    assert texts(result) == ["half done"]
    assert result.lines[0].cursor == Cursor(log.stat().st_ino, 14)
    assert reader.cursor() == Cursor(log.stat().st_ino, 14)  # "next" is held back


def test_a_missing_file_is_the_origin_until_it_appears(log: Path, reader: FileReader):
    reader.open_at_end()
    assert reader.cursor() == Cursor.origin()
    assert texts(reader.step()) == []
    log.write_text("born\n")
    assert texts(reader.step()) == ["born"]


def test_truncation_restarts_from_the_start_with_a_notice(log: Path, reader: FileReader):
    log.write_text("a long line before truncation\n")
    reader.open_at_end()
    log.write_text("short\n")
    result = reader.step()
    assert result.notices == [(0, NOTICE_TRUNCATED)]
    assert texts(result) == ["short"]


def test_rotation_drains_the_old_file_then_reads_the_new_one(log: Path, reader: FileReader):
    log.write_text("")
    reader.open_at_end()
    with log.open("a") as old:
        old.write("old 1\n")
        old.flush()
        log.rename(log.with_suffix(".log.1"))
        old.write("old 2 unfinished")
    log.write_text("new 1\n")
    result = reader.step()
    assert texts(result) == ["old 1", "old 2 unfinished", "new 1"]
    assert result.notices == [(2, NOTICE_ROTATED)]
    assert result.more
    assert reader.cursor() == Cursor(log.stat().st_ino, 6)


def test_a_range_comes_in_bounded_batches_of_complete_lines(log: Path):
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(2500)) + b"partial")
    fd = os.open(log, os.O_RDONLY)
    try:
        reader = RangeReader(fd, 7, 0, log.stat().st_size)
        batches = []
        while (batch := reader.read()) is not None:
            batches.append(batch)
        assert [len(b) for b in batches] == [1000, 1000, 500]
        assert batches[0][0].text == "line 0"  # the CR of CRLF is dropped
        assert batches[-1][-1].cursor == Cursor(7, log.stat().st_size - len("partial"))
    finally:
        os.close(fd)


def test_decoding_never_fails():
    assert decode(b"caf\xc3\xa9\r") == "café"
    assert decode(b"\xff") == "\ufffd"
