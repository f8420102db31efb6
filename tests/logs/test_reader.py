"""The file reader without asyncio: plain files, plain calls, every ``tail -F`` case."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import (
    FINGERPRINT_BYTES,
    INLINE_READ_BYTES,
    NOTICE_ROTATED,
    NOTICE_TRUNCATED,
    FileReader,
    RangeReader,
    StepResult,
    decode,
    ends_a_line,
    holds,
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


def rewrite(path: Path, data: str) -> None:
    """Truncate in place and write anew (``O_TRUNC``: the same inode)."""
    inode = path.stat().st_ino
    with path.open("w") as f:
        f.write(data)
    assert path.stat().st_ino == inode


@pytest.mark.parametrize("rounds", [1, 25])
def test_a_truncation_regrown_past_the_offset_is_seen_and_read_whole(
    log: Path, reader: FileReader, rounds: int
):
    log.write_text("".join(f"before {i} " + "y" * 50 + "\n" for i in range(40)))
    reader.open_at_end()  # the fingerprint of an opened file is read at the open
    for round_ in range(rounds):
        size = log.stat().st_size
        lines = [f"round {round_} line {i:04d} " + "z" * 40 for i in range(size // 60 + 5)]
        rewrite(log, "".join(line + "\n" for line in lines))
        assert log.stat().st_size > size
        result = reader.step()
        assert result.notices == [(0, NOTICE_TRUNCATED)]
        assert texts(result) == lines
        assert reader.cursor() == Cursor(log.stat().st_ino, log.stat().st_size)


def test_a_held_partial_line_is_dropped_by_a_truncation_not_glued_to_the_new_content(
    log: Path, reader: FileReader
):
    log.write_text("whole\nhalf of a line that never ends")
    reader.open_at_end()
    assert texts(reader.step()) == []  # the partial line is held
    rewrite(log, "whole\nsomething else entirely, longer than before\n")
    result = reader.step()
    assert result.notices == [(0, NOTICE_TRUNCATED)]
    assert texts(result) == ["whole", "something else entirely, longer than before"]


def test_a_truncation_found_by_an_inline_step_reads_no_more_than_its_budget(
    log: Path, reader: FileReader
):
    log.write_text("x" * 100 + "\n")
    reader.open_at_end()
    lines = [f"new {i:05d} " + "n" * 90 for i in range(2000)]  # ~200 KB
    rewrite(log, "".join(line + "\n" for line in lines))
    first = reader.step(INLINE_READ_BYTES)
    assert first.notices == [(0, NOTICE_TRUNCATED)]
    assert first.more
    assert reader.read_offset == INLINE_READ_BYTES
    rest = reader.step()
    assert rest.notices == []
    assert texts(first) + texts(rest) == lines


def test_appends_and_held_partial_lines_keep_the_fingerprint_and_give_no_false_truncation(
    log: Path, reader: FileReader
):
    log.write_text("")
    reader.open_at_end()
    expected: list[str] = []
    got: list[str] = []
    for i in range(50):
        batch = [f"line {i}.{j} " + "a" * (i * 7 % 300) for j in range(i % 5 + 1)]
        append(log, "".join(line + "\n" for line in batch) + ("half" if i % 3 else ""))
        expected += batch
        first = reader.step()
        got += texts(first)
        if i % 3:
            append(log, " done\n")
            expected.append("half done")
            second = reader.step()
            got += texts(second)
            assert second.notices == []
        assert first.notices == []
        assert reader.fingerprint == log.read_bytes()[-FINGERPRINT_BYTES:]
    assert got == expected
    log.write_text("")
    assert reader.step().notices == [(0, NOTICE_TRUNCATED)]


def test_a_rewrite_with_the_same_bytes_up_to_the_offset_cannot_be_told_apart(
    log: Path, reader: FileReader
):
    """Documented limit: the bytes before the offset are all there is to compare.

    Nothing is lost or mangled: the bytes before the offset are the ones
    already delivered, and what follows them is read as new lines.
    """
    log.write_text("same\n" * 100)
    reader.open_at_end()
    rewrite(log, "same\n" * 100 + "then new\n")
    result = reader.step()
    assert result.notices == []
    assert texts(result) == ["then new"]


def test_the_cursor_fingerprint_is_the_bytes_before_the_cursor_partial_line_or_not(
    log: Path, reader: FileReader
):
    log.write_text("x" * 300 + "\nfirst\n")
    reader.open_at_end()
    assert reader.cursor_fingerprint() == log.read_bytes()[-FINGERPRINT_BYTES:]
    append(log, "second\nhalf")
    reader.step()
    data = log.read_bytes()
    assert reader.cursor().offset == len(data) - len("half")
    assert reader.cursor_fingerprint() == data[: -len("half")][-(FINGERPRINT_BYTES - 4) :]
    fd = os.open(log, os.O_RDONLY)
    try:
        assert holds(fd, reader.cursor().offset, reader.cursor_fingerprint())
        rewrite(log, "y" * 400 + "\n")
        assert not holds(fd, reader.cursor().offset, reader.cursor_fingerprint())
        assert ends_a_line(fd, 401)
        assert not ends_a_line(fd, 400)
        assert ends_a_line(fd, 0)
    finally:
        os.close(fd)


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
