"""A source's history on real files: siblings, newest-first reading, time seeks, search."""

from __future__ import annotations

import gzip
import os
import random
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.logs.history import (
    GzipReader,
    HistoryFile,
    SearchOptions,
    SearchProgress,
    SearchResult,
    gzip_blocks_reverse,
    history_files,
    read_blocks_reverse,
    read_lines_reverse,
    rotated_siblings,
    search_history,
    seek_time,
)
from streams.logs.lines import detect_level
from streams.logs.patterns import LineMatcher
from streams.logs.timestamps import TimeContext, TimeRange, line_time

UTC_CONTEXT = TimeContext(UTC)
#: Log times start here (recent, so no file looks "last written before since").
BASE = float(int(time.time()) - 86400)


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def log_lines(first: int, count: int, *, step: float = 1.0, every_traceback: int = 0) -> list[str]:
    """Lines ``first..first+count`` one ``step`` apart; a traceback after every n-th."""
    lines = []
    for i in range(first, first + count):
        level = "ERROR" if i % 10 == 0 else "INFO"
        lines.append(
            f"{stamp(BASE + i * step)} {level} line {i} payment={'yes' if i % 3 else 'no'}"
        )
        if every_traceback and i % every_traceback == 0:
            lines += [
                "Traceback (most recent call last):",
                f'  File "shop.py", line {i}, in checkout',
                f"ValueError: refund {i}",
            ]
    return lines


def write(path: Path, lines: list[str], *, final_newline: bool = True) -> Path:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """app.log (lines 2000-2999), app.log.1 (1000-1999), app.log.2.gz (0-999)."""
    write(tmp_path / "app.log.2.gz", log_lines(0, 1000, every_traceback=100))
    write(tmp_path / "app.log.1", log_lines(1000, 1000, every_traceback=100))
    write(tmp_path / "app.log", log_lines(2000, 1000, every_traceback=100))
    return tmp_path / "app.log"


def results(items: Iterator[SearchResult | SearchProgress]) -> list[SearchResult]:
    return [item for item in items if isinstance(item, SearchResult)]


def open_fds_to(directory: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
                count += 1
        except OSError:
            continue
    return count


# -- siblings -------------------------------------------------------------------------------


def test_rotated_siblings_are_found_by_the_usual_names_newest_first(tmp_path: Path):
    for name in [
        "app.log",
        "app.log.1",
        "app.log.2.gz",
        "app.log.10.gz",
        "app.log-20261130.gz",
        "app.log-20261201",
        "app.log.2026-11-29",
        "app.log.bak",
        "other.log.1",
        "app.logger.1",
    ]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "app.log.3").mkdir()
    assert [p.name for p in rotated_siblings(tmp_path / "app.log")] == [
        "app.log.1",
        "app.log.2.gz",
        "app.log.10.gz",
        "app.log-20261201",
        "app.log-20261130.gz",
        "app.log.2026-11-29",
    ]


def test_a_source_may_name_its_own_rotation_pattern(tmp_path: Path):
    for name in ["app.log", "app-old-2.log", "app-old-1.log", "app.log.1"]:
        (tmp_path / name).write_text("x\n")
    siblings = rotated_siblings(tmp_path / "app.log", [r"app-old-(?P<n>\d+)\.log"])
    assert [p.name for p in siblings] == ["app-old-1.log", "app-old-2.log"]


def test_history_files_start_with_the_current_file(source: Path):
    files = history_files(source)
    assert [(f.path.name, f.current, f.compressed) for f in files] == [
        ("app.log", True, False),
        ("app.log.1", False, False),
        ("app.log.2.gz", False, True),
    ]
    assert history_files(source.parent / "missing.log") == []


# -- reading newest first --------------------------------------------------------------------

LINE_TEXT = st.text(alphabet="ab \té", max_size=40)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(LINE_TEXT, min_size=1, max_size=40),
    block=st.integers(min_value=1, max_value=64),
    final_newline=st.booleans(),
)
def test_a_plain_file_reads_backwards_line_by_line_in_any_block_size(
    tmp_path: Path, lines: list[str], block: int, final_newline: bool
):
    path = write(tmp_path / "plain.log", lines, final_newline=final_newline)
    data = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = list(read_blocks_reverse(fd, block_bytes=block))
    finally:
        os.close(fd)
    # Contiguous, whole lines, newest first.
    assert b"".join(b.data for b in reversed(blocks)) == data
    for b in blocks:
        assert b.offset == 0 or data[b.offset - 1 : b.offset] == b"\n"
        assert data[b.offset : b.offset + len(b.data)] == b.data
    expected = data.split(b"\n")
    if not expected[-1]:
        expected.pop()  # after the last line break: no line
    got = [line for _, line in read_lines_reverse(HistoryFile.of(path))]
    assert got == expected[::-1]


@pytest.mark.parametrize("segment", [1, 100, 4096, 8 * 1024 * 1024])
def test_a_gzipped_file_reads_backwards_in_segments(tmp_path: Path, segment: int):
    path = tmp_path / "app.log.2.gz"
    lines = log_lines(0, 3000, every_traceback=50)
    # Two gzip members, as ``cat a.gz b.gz`` makes.
    first = gzip.compress(("\n".join(lines[:1000]) + "\n").encode())
    second = gzip.compress(("\n".join(lines[1000:]) + "\n").encode())
    path.write_bytes(first + second)
    blocks = list(gzip_blocks_reverse(path, segment_bytes=segment, context=UTC_CONTEXT))
    data = b"".join(b.data for b in reversed(blocks))
    assert data == ("\n".join(lines) + "\n").encode()
    assert [b.offset for b in blocks] == sorted((b.offset for b in blocks), reverse=True)
    got = [line.decode() for _, line in read_lines_reverse(HistoryFile.of(path))]
    assert got == lines[::-1]


def test_a_block_starts_at_a_line_with_a_timestamp_so_tracebacks_stay_whole(tmp_path: Path):
    path = write(tmp_path / "app.log", log_lines(0, 400, every_traceback=3))
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = list(read_blocks_reverse(fd, block_bytes=300, context=UTC_CONTEXT))
    finally:
        os.close(fd)
    assert len(blocks) > 50
    for block in blocks:
        first_line = block.data.split(b"\n", 1)[0]
        assert line_time(first_line, UTC_CONTEXT) is not None, first_line


# -- seeking by time -------------------------------------------------------------------------


def linear_seek(data: bytes, when: float) -> int:
    offset = 0
    for line in data.split(b"\n"):
        line_when = line_time(line, UTC_CONTEXT)
        if line_when is not None and line_when >= when:
            return offset
        offset += len(line) + 1
    return len(data)


def test_seek_time_finds_the_first_record_at_or_after_a_time(tmp_path: Path):
    path = write(tmp_path / "app.log", log_lines(0, 20_000, step=0.5, every_traceback=7))
    data = path.read_bytes()
    rng = random.Random(7)
    fd = os.open(path, os.O_RDONLY)
    try:
        targets = [
            BASE - 10,
            BASE,
            BASE + 20_000,
            *(BASE + rng.uniform(0, 10_000) for _ in range(40)),
        ]
        for when in targets:
            assert seek_time(fd, when, context=UTC_CONTEXT) == linear_seek(data, when), when
    finally:
        os.close(fd)


def test_seek_time_with_nearly_ordered_times_lands_within_the_disorder(tmp_path: Path):
    rng = random.Random(3)
    lines = [f"{stamp(BASE + i + rng.uniform(-2, 2))} INFO jittered {i}" for i in range(20_000)]
    path = write(tmp_path / "app.log", lines)
    fd = os.open(path, os.O_RDONLY)
    try:
        for target in (1000, 7777, 15000):
            offset = seek_time(fd, BASE + target, context=UTC_CONTEXT)
            line = os.pread(fd, 200, offset).split(b"\n", 1)[0]
            index = int(line.rsplit(b" ", 1)[1])
            assert abs(index - target) <= 4
    finally:
        os.close(fd)


def test_seek_time_takes_milliseconds_where_a_scan_takes_far_longer(tmp_path: Path):
    path = tmp_path / "big.log"
    with path.open("w") as f:
        chunk = 20_000
        for first in range(0, 400_000, chunk):
            f.write("\n".join(log_lines(first, chunk, step=0.1)) + "\n")
    size = path.stat().st_size
    assert size > 20 * 1024 * 1024
    middle = BASE + 20_000.0
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        offset = seek_time(fd, middle, context=UTC_CONTEXT)
        seek_seconds = time.perf_counter() - started
        assert line_time(os.pread(fd, 100, offset), UTC_CONTEXT) == middle
        # The baseline: merely reading the file up to that offset.
        started = time.perf_counter()
        position = 0
        while position < offset:
            position += len(os.pread(fd, 1024 * 1024, position))
        read_seconds = time.perf_counter() - started
    finally:
        os.close(fd)
    assert seek_seconds < 0.05 or seek_seconds < read_seconds / 10, (seek_seconds, read_seconds)


# -- search ----------------------------------------------------------------------------------


def test_search_covers_current_rotated_and_gzipped_files_newest_first(source: Path):
    found = results(search_history(history_files(source), LineMatcher.build(q="PAYMENT=NO")))
    numbers = [int(r.text.split()[4]) for r in found]
    assert numbers == [i for i in range(2999, -1, -1) if i % 3 == 0]
    assert {Path(r.path).name for r in found} == {"app.log", "app.log.1", "app.log.2.gz"}
    current = next(r for r in found if Path(r.path).name == "app.log")
    data = source.read_bytes()
    assert data[current.start : current.end] == current.text.encode() + b"\n"
    assert current.cursor == f"{source.stat().st_ino}:{current.end}"
    gzipped = found[-1]
    assert gzipped.compressed
    assert gzipped.cursor is None
    assert gzipped.spans == ((gzipped.text.index("payment=no"), len(gzipped.text)),)


def test_each_filter_applies(source: Path):
    files = history_files(source)

    def numbers(**params: str) -> list[int]:
        found = results(search_history(files, LineMatcher.build(**params)))  # type: ignore[arg-type]
        return [int(r.text.split()[4]) for r in found if not r.text.startswith(("Trace", " "))]

    assert numbers(re=r"line 1\d50 ") == [
        1950,
        1850,
        1750,
        1650,
        1550,
        1450,
        1350,
        1250,
        1150,
        1050,
    ]
    assert numbers(re=r"line 2..5 ", exclude="payment=no") == [
        i for i in range(2995, 1999, -10) if i % 3
    ]
    errors = numbers(level="error", re=r"line 29\d\d ")
    assert errors == [i for i in range(2990, 2899, -10)]


def test_a_traceback_line_has_its_headers_level_and_time(source: Path, tmp_path: Path):
    files = history_files(source)
    # Small blocks: many headers are in an earlier block than some of their lines.
    options = SearchOptions(block_bytes=256, context=UTC_CONTEXT)
    found = results(
        search_history(files, LineMatcher.build(re=r"ValueError: refund 2\d{3}$"), None, options)
    )
    assert [r.text for r in found] == [f"ValueError: refund {i}" for i in range(2900, 1999, -100)]
    assert all(r.level == "error" for r in found)
    assert [r.time for r in found] == [BASE + i for i in range(2900, 1999, -100)]
    frames = results(
        search_history(files, LineMatcher.build(q='File "shop.py"', level="error"), None, options)
    )
    assert len(frames) == 30  # every traceback's frame, in all three files


def test_time_bounds_seek_and_filter_across_files(source: Path):
    files = history_files(source)
    bounds = TimeRange(BASE + 1995, BASE + 2004.5)
    found = results(
        search_history(files, LineMatcher(), bounds, SearchOptions(context=UTC_CONTEXT))
    )
    texts = [r.text for r in found]
    assert [t.split()[4] for t in texts if not t.startswith(("Trace", " ", "Value"))] == [
        str(i) for i in range(2004, 1994, -1)
    ]
    # The tracebacks at 2000 belong to it and come with it (newest first).
    assert texts[4:8] == [
        "ValueError: refund 2000",
        '  File "shop.py", line 2000, in checkout',
        "Traceback (most recent call last):",
        f"{stamp(BASE + 2000)} ERROR line 2000 payment=yes",
    ]


def test_since_reads_only_the_end_of_the_current_file(source: Path):
    files = history_files(source)
    items = list(
        search_history(
            files, LineMatcher(), TimeRange(BASE + 2990, None), SearchOptions(context=UTC_CONTEXT)
        )
    )
    found = results(iter(items))
    assert [r.text.split()[4] for r in found] == [str(i) for i in range(2999, 2989, -1)]
    total = items[0].total  # type: ignore[union-attr]
    # The seek (widened by the ordering slack) leaves a few hundred bytes of
    # app.log and none of app.log.1; a gzipped file cannot seek (it is read whole).
    gzipped = (source.parent / "app.log.2.gz").stat().st_size
    assert 0 < total - gzipped < 2000


def test_the_line_being_written_is_not_searched(tmp_path: Path):
    path = write(tmp_path / "app.log", log_lines(0, 5), final_newline=False)
    found = results(search_history(history_files(path), LineMatcher.build(q="line")))
    assert [r.text.split()[4] for r in found] == ["3", "2", "1", "0"]
    rotated = write(tmp_path / "app.log.1", log_lines(100, 2), final_newline=False)
    found = results(search_history([HistoryFile.of(rotated)], LineMatcher.build(q="line")))
    assert [r.text.split()[4] for r in found] == ["101", "100"]


def test_progress_rises_to_the_total(source: Path):
    items = list(
        search_history(
            history_files(source),
            LineMatcher.build(q="zzz"),
            None,
            SearchOptions(block_bytes=4096, segment_bytes=4096),
        )
    )
    progress = [item for item in items if isinstance(item, SearchProgress)]
    scanned = [p.scanned for p in progress]
    assert scanned == sorted(scanned)
    assert len(progress) > 20
    total = sum(f.size for f in history_files(source))
    assert progress[-1].scanned == progress[-1].total == total - 0  # every byte, counted once


def test_a_search_stopped_by_its_consumer_stops_reading_and_closes_its_files(tmp_path: Path):
    path = tmp_path / "big.log"
    write(path, log_lines(0, 100_000))
    search = search_history(
        history_files(path), LineMatcher.build(q="payment"), None, SearchOptions(block_bytes=65536)
    )
    first = next(item for item in search if isinstance(item, SearchResult))
    assert first.text.split()[4] == "99999"
    assert open_fds_to(tmp_path) == 1
    progress = next(item for item in search if isinstance(item, SearchProgress))
    search.close()
    assert open_fds_to(tmp_path) == 0
    assert progress.scanned <= 2 * 65536 < progress.total


def test_a_search_holds_a_bounded_amount_of_memory(tmp_path: Path):
    path = tmp_path / "app.log"
    with path.open("w") as f:
        for first in range(0, 400_000, 50_000):
            f.write("\n".join(log_lines(first, 50_000)) + "\n")
    write(tmp_path / "app.log.1.gz", log_lines(0, 100_000))
    size = sum(f.size for f in history_files(path))
    assert size > 20 * 1024 * 1024
    options = SearchOptions(block_bytes=1024 * 1024, segment_bytes=1024 * 1024)
    matcher = LineMatcher.build(q="7 payment=no")
    tracemalloc.start()
    try:
        count = 0
        for item in search_history(history_files(path), matcher, None, options):
            count += isinstance(item, SearchResult)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == sum(1 for i in range(400_000) if i % 30 == 27) + sum(
        1 for i in range(100_000) if i % 30 == 27
    )
    # About six 1 MiB blocks (see the module docstring), whatever the size of the files.
    assert peak < 8 * 1024 * 1024, peak


@pytest.mark.parametrize(
    "layout",
    [
        "{ts} ERROR app: x",
        "{ts} WARN app: x",
        "{ts} [CRITICAL] app: x",
        "[{ts}] INFO x",
        "{ts}Z DEBUG x",
        "{ts}+01:00 ERR x",
        "{ts} info lower case is not a level word: ERROR later",
        "{ts} INFORMATION is not INFO",
        "{ts} [error] bracketed lower case",
        "{ts} worker-1 level=warning x",
        '{ts} "GET / HTTP/1.1" 503 12',
        "{ts} nothing at all",
    ],
)
def test_a_results_level_is_what_the_live_tail_says(tmp_path: Path, layout: str):
    text = layout.format(ts=stamp(BASE))
    path = write(tmp_path / "app.log", [text])
    (result,) = results(search_history(history_files(path), LineMatcher()))
    assert result.level == detect_level(text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    segment=st.sampled_from([64, 300, 1000, 5000]),
    query=st.sampled_from(["refund 1", "line 7", "payment=no", "zzz", "ValueError", "line 40"]),
)
def test_a_gzipped_file_gives_the_same_results_as_its_plain_copy(
    tmp_path: Path, seed: int, segment: int, query: str
):
    """Segments the first pass saw no candidate in are not inflated again: nothing is lost."""
    rng = random.Random(seed)
    lines = log_lines(0, 400, every_traceback=rng.choice([3, 17, 50]))
    for _ in range(5):  # a few long lines, across segment boundaries
        lines.insert(
            rng.randrange(len(lines)), f"{stamp(BASE + 1)} INFO " + "x" * rng.randrange(2000)
        )
    plain = write(tmp_path / "plain.log", lines)
    gzipped = write(tmp_path / "gz.log.gz", lines)
    # Small reads of compressed input: an inflater is copied only between two.
    options = SearchOptions(
        block_bytes=200, segment_bytes=segment, gzip_read_bytes=64, context=UTC_CONTEXT
    )
    matcher = LineMatcher.build(q=query)

    def found(path: Path) -> list[tuple[str, str, float | None, int, int]]:
        items = search_history([HistoryFile.of(path)], matcher, None, options)
        return [(r.text, r.level, r.time, r.start, r.end) for r in results(items)]

    assert found(gzipped) == found(plain)
    # And there were segments to skip: the gzipped file was cut into many.
    reader = GzipReader(gzipped, segment_bytes=segment, read_bytes=64)
    with gzipped.open("rb") as file:
        reader.index(file, matcher.candidate_lines)
        segments = list(reader.segments_reverse(file))
    assert len(segments) >= 3
    if query == "zzz":
        assert all(skipped for *_, skipped in segments[:-1])


def has_time(line: bytes) -> bool:
    return line_time(line, UTC_CONTEXT) is not None


def gzip_and_plain(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    plain = write(tmp_path / "plain.log", lines, final_newline=False)
    return write(tmp_path / "gz.log.gz", lines, final_newline=False), plain


def same_search(gzipped: Path, plain: Path, matcher: LineMatcher, options: SearchOptions) -> None:
    def found(path: Path) -> list[tuple[object, ...]]:
        items = search_history([HistoryFile.of(path)], matcher, None, options)
        return [(r.text, r.level, r.time, r.start, r.end, r.spans) for r in results(items)]

    assert found(gzipped) == found(plain) != []


def test_a_gzip_search_keeps_lines_with_their_own_time_from_its_first_pass(tmp_path: Path):
    """Such lines' results do not depend on the blocks they are read in: one inflation is enough."""
    lines = [*log_lines(0, 3000, every_traceback=7), f"{stamp(BASE + 3000)} INFO 0 payment=no"]
    gzipped, plain = gzip_and_plain(tmp_path, lines)
    matcher = LineMatcher.build(q="0 payment=NO")
    reader = GzipReader(gzipped, segment_bytes=50_000, read_bytes=256)
    with gzipped.open("rb") as file:
        reader.index(file, matcher.candidate_lines, has_time)
    assert reader.kept is not None
    assert len(reader.kept) > 3
    data = gzip.decompress(gzipped.read_bytes())
    kept = [(offset, line) for segment in reader.kept for offset, line in segment]
    assert len(kept) == 101  # lines 0, 30, ... 2970, and the last, without its line break
    assert all(data[offset : offset + len(line)] == line for offset, line in kept)
    assert kept[-1][1] == lines[-1].encode()
    options = SearchOptions(segment_bytes=50_000, gzip_read_bytes=256, context=UTC_CONTEXT)
    same_search(gzipped, plain, matcher, options)


@pytest.mark.parametrize(
    ("query", "segment"),
    [
        ("ValueError", 20_000),  # a traceback line: its level and time are its header's
        ("payment", 20_000),  # more candidate bytes than a segment: kept no longer
    ],
)
def test_a_gzip_search_inflates_again_when_it_cannot_keep_the_lines(
    tmp_path: Path, query: str, segment: int
):
    gzipped, plain = gzip_and_plain(tmp_path, log_lines(0, 3000, every_traceback=7))
    matcher = LineMatcher.build(q=query)
    reader = GzipReader(gzipped, segment_bytes=segment, read_bytes=256)
    with gzipped.open("rb") as file:
        reader.index(file, matcher.candidate_lines, has_time)
    assert reader.kept is None
    options = SearchOptions(
        block_bytes=4096, segment_bytes=segment, gzip_read_bytes=256, context=UTC_CONTEXT
    )
    same_search(gzipped, plain, matcher, options)
