"""The overview's chart: the last hour's lines per minute by level, from the file, then live."""

# The tests write the followed file from the event loop on purpose.

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.logs.chart import CHART_HEIGHT, MinuteCounts, chart_of, count_file_minutes, minute_of
from streams.logs.files.cursor import parse_texts
from streams.logs.timestamps import TimeContext
from tests.support.asgi import StreamCall
from tests.support.sse import events_in

#: A whole minute, well inside the last hour.
NOW = float(int(time.time()) // 60 * 60)


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def known_file(path: Path) -> Path:
    """90 and 61 minutes ago (out); 30 ago 3 errors, 1 info, a traceback; 5 ago 2 warnings."""
    lines = [
        f"{stamp(NOW - 90 * 60)} ERROR too old",
        f"{stamp(NOW - 61 * 60)} INFO too old as well",
        f"{stamp(NOW - 30 * 60 + 1)} ERROR one",
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in b',
        "ValueError: c",
        f"{stamp(NOW - 30 * 60 + 2)} ERROR two",
        f"{stamp(NOW - 30 * 60 + 3)} INFO three",
        json.dumps({"ts": datetime.fromtimestamp(NOW - 1796, UTC).isoformat(), "level": "error"}),
        f"{stamp(NOW - 5 * 60)} WARNING four",
        f"{stamp(NOW - 5 * 60 + 59)} WARNING five",
    ]
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_the_file_gives_the_last_hours_counts_per_minute(tmp_path: Path):
    path = known_file(tmp_path / "app.log")
    stat = path.stat()
    counts = count_file_minutes(path, stat.st_ino, stat.st_size, NOW - 3600, TimeContext(UTC))
    assert counts == {
        minute_of(NOW - 30 * 60): Counter(error=3, info=1),
        minute_of(NOW - 5 * 60): Counter(warning=2),
    }
    # Only up to ``end``, and nothing from another inode.
    end = len("".join(f"{line}\n" for line in path.read_text().splitlines()[:7]))
    assert count_file_minutes(path, stat.st_ino, end, NOW - 3600, TimeContext(UTC)) == {
        minute_of(NOW - 30 * 60): Counter(error=2)
    }
    assert count_file_minutes(path, stat.st_ino + 1, stat.st_size, 0, TimeContext(UTC)) == {}


def test_filling_replaces_what_was_observed_before_and_keeps_what_came_after():
    clock = [NOW]
    minutes = MinuteCounts(lambda: clock[0])
    minutes.add(tuple(parse_texts(["INFO seen before the fill"])))
    snapshot = minutes.snapshot()
    minutes.add(tuple(parse_texts(["ERROR seen after", "  a continuation: not counted"])))
    minutes.fill(
        {minute_of(NOW): Counter(info=1), minute_of(NOW - 600): Counter(debug=4)}, snapshot
    )
    assert minutes.minutes == {
        minute_of(NOW): Counter(info=1, error=1),
        minute_of(NOW - 600): Counter(debug=4),
    }
    window = minutes.window()
    assert len(window) == 60
    assert window[-1] == (minute_of(NOW), (("info", 1), ("error", 1)))
    assert window[-11] == (minute_of(NOW - 600), (("debug", 4),))
    clock[0] = NOW + 3600  # an hour later it has all gone
    assert all(levels == () for _, levels in minutes.window())


def test_bars_stack_by_level_scaled_to_the_busiest_minute():
    chart = chart_of(((1, (("info", 1), ("error", 3))), (2, ()), (3, (("info", 2),))))
    assert chart.peak == 4
    info, error, second = chart.bars
    assert (info.x, info.y, info.height) == (0, CHART_HEIGHT * 3 / 4, CHART_HEIGHT / 4)
    assert (error.y, error.height) == (0.0, CHART_HEIGHT * 3 / 4)
    assert (second.x, second.height) == (8, CHART_HEIGHT / 2)


@pytest.mark.django_db(transaction=True)
async def test_the_overview_card_charts_the_file_then_live_lines(
    tmp_path: Path, settings: Any, staff_cookie: str
):
    path = known_file(tmp_path / "app.log")
    settings.STREAMBOARD_LOGS = {"app": path}
    request = StreamCall("/streams/overview/", staff_cookie)
    await request.start()
    body = await request.read_until(lambda b: b"event: source-app" in b and b.endswith(b"\n\n"))
    card = events_in(body)[-1].data

    def bars(card: str) -> dict[tuple[int, str], int]:
        found = re.findall(r'data-minute="(\d+)" data-level="(\w+)" data-count="(\d+)"', card)
        return {(int(m), level): int(n) for m, level, n in found}

    assert "<svg" in card
    assert bars(card) == {
        (minute_of(NOW - 1800), "info"): 1,
        (minute_of(NOW - 1800), "error"): 3,
        (minute_of(NOW - 300), "warning"): 2,
    }
    with path.open("a") as f:
        f.write(f"{stamp(time.time())} ERROR live\n")
    body = await request.read_until(
        lambda b: b.count(b"event: source-app") >= 2 and b.endswith(b"\n\n")
    )
    await request.hang_up()
    live = bars(events_in(body)[-1].data)
    assert live[(minute_of(time.time()), "error")] >= 1
