"""The fan-out and the source contract with a source that is not a file.

``MemorySource`` is the smallest ``LogSource``: its lines live in a list and
its cursor is a sequence number (``"seq-<n>"``). If the fan-out, the producer,
the encoders, the form and the lookup by name work with it, they do not
depend on the file source.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, cast

import pytest
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.test import override_settings

from streams.http.push import WriteResult
from streams.http.sse import Event
from streams.logs import sources
from streams.logs.encoding import EVENT_DATA_BYTES, Format, lines_to_sse, text_chunks
from streams.logs.fanout import SLICE_BYTES, FanOut, LogBatch, Subscription
from streams.logs.follow import LinesEvent, NoticeEvent, SkippedEvent, follow_log
from streams.logs.forms import LogStreamForm
from streams.logs.lines import LineParser, LogCursor, LogLine
from streams.logs.sources import Resume, SourceSubscription, SourceSummary, UnknownSource
from tests.support.wait import async_wait_until

WAIT: Final = 5.0
GONE: Final = "That sequence number is no longer kept."


@dataclass(frozen=True)
class Seq:
    number: int

    def __str__(self) -> str:
        return f"seq-{self.number}"


class MemorySubscription(SourceSubscription):
    def __init__(self, source: MemorySource, limit: int) -> None:
        super().__init__(limit, Seq(len(source.lines)), on_close=source.fanout.remove)
        self.fanout = source.fanout
        self.history = list(source.lines)

    async def backfill(self, count: int) -> AsyncIterator[list[LogLine]]:
        if count > 0 and self.history:
            yield self.history[-count:]

    async def since(self, after: LogCursor) -> Resume:
        assert isinstance(after, Seq)
        if after.number > len(self.history):
            return Resume(GONE, _lines(self.history), self.start)
        return Resume(None, _lines(self.history[after.number :]), self.start)


async def _lines(lines: list[LogLine]) -> AsyncIterator[list[LogLine]]:
    if lines:
        yield lines


@dataclass
class MemorySource:
    name: str = "memory"
    cursor_syntax: str = "seq-<n>"
    limit: int = 100
    lines: list[LogLine] = field(default_factory=list)
    fanout: FanOut = field(default_factory=lambda: FanOut(Seq(0)))
    parser: LineParser = field(default_factory=LineParser)

    def parse_cursor(self, text: str) -> Seq:
        prefix, _, number = text.partition("-")
        if prefix != "seq" or not number.isdigit():
            raise ValueError(text)
        return Seq(int(number))

    def subscribe(self) -> MemorySubscription:
        return self.fanout.add(MemorySubscription(self, self.limit))

    async def context_start(self, cursor: LogCursor, before: int) -> LogCursor:
        return cursor  # no history to look back into

    async def level_minutes(self, since: float, end: LogCursor) -> dict[int, Counter[str]]:
        return {}

    def summary(self) -> SourceSummary:
        return SourceSummary(exists=True, size=len(self.lines))

    async def download(self, request: HttpRequest) -> HttpResponseBase | None:
        return None

    def write(self, *texts: str) -> None:
        """Append lines and publish them as one batch."""
        new = []
        for text in texts:
            new.append(self.parser.parse(text, Seq(len(self.lines) + 1)))
            self.lines.append(new[-1])
        self.fanout.advance(new[-1].cursor)
        self.fanout.publish(LogBatch(tuple(new), new[-1].cursor))


def memory_source(name: str, location: str) -> MemorySource:
    """A ``SourceFactory`` for ``memory:<anything>`` locations."""
    return MemorySource(name=name)


def texts(event: object) -> list[str]:
    return [line.text for line in lines_event(event).lines]


def lines_event(event: object) -> LinesEvent:
    assert isinstance(event, LinesEvent)
    return event


async def test_follow_backfills_then_delivers_live_lines_of_a_non_file_source():
    source = MemorySource()
    source.write("INFO one", "ERROR two", "three")
    events = follow_log(source, backfill=2)
    try:
        opening = lines_event(await anext(events))
        assert texts(opening) == ["ERROR two", "three"]
        assert str(opening.cursor) == "seq-3"
        source.write("WARNING four")
        async with asyncio.timeout(WAIT):
            live = lines_event(await anext(events))
        assert texts(live) == ["WARNING four"]
        (sse,) = lines_to_sse(live, "json")
        assert sse.id == "seq-4"
        assert json.loads(sse.data) == {"lines": [{"text": "WARNING four", "level": "warning"}]}
    finally:
        await events.aclose()
    assert source.fanout.subscriber_count == 0


async def test_resume_and_a_gone_cursor_of_a_non_file_source():
    source = MemorySource()
    source.write("a", "b", "c")
    resumed = follow_log(source, after=Seq(1))
    try:
        assert texts(await anext(resumed)) == ["b", "c"]
    finally:
        await resumed.aclose()
    gone = follow_log(source, after=Seq(99))
    try:
        notice = await anext(gone)
        assert notice == NoticeEvent(GONE, Seq(99))
        assert texts(await anext(gone)) == ["a", "b", "c"]
    finally:
        await gone.aclose()


async def test_overflow_and_shared_batches_with_a_non_file_source():
    source = MemorySource(limit=2)
    source.write("x")
    slow, quick = follow_log(source, backfill=0), follow_log(source, backfill=0)
    try:
        await anext(slow), await anext(quick)
        source.write("a", "b")
        shared = await anext(quick)
        source.write("c")  # the slow client's queue (2 lines) overflows
        skipped = await anext(slow)
        assert skipped == SkippedEvent(2, Seq(3))
        assert texts(await anext(slow)) == ["c"]
        assert isinstance(shared, LinesEvent)
        assert shared.batches is not None
        assert shared.batches[0].encoded("html", lambda _: "once") == "once"
        assert shared.batches[0].encoded("html", lambda _: "twice") == "once"
    finally:
        await slow.aclose()
        await quick.aclose()


async def test_the_text_encoder_with_a_non_file_source():
    source = MemorySource()
    source.write("alpha", "beta")
    chunks = cast(AsyncGenerator[bytes], text_chunks(follow_log(source, backfill=1)))
    try:
        assert await anext(chunks) == b"beta\n"
    finally:
        await chunks.aclose()


def test_the_form_parses_cursors_with_the_source_and_names_its_syntax():
    source = MemorySource()
    form = LogStreamForm({}, "seq-7", source=source)
    assert form.is_valid(), form.errors
    assert form.log_query().after == Seq(7)
    bad = LogStreamForm({}, "12:345", source=source)
    assert not bad.is_valid()
    assert "Last-Event-ID" in bad.error_text()
    assert "seq-<n>" in bad.error_text()


async def test_skip_through_drops_what_the_client_has_until_its_cursor():
    subscription = Subscription(10, Seq(0))
    parser = LineParser()

    def batch(*numbers: int) -> LogBatch:
        lines = tuple(parser.parse(f"line {n}", Seq(n)) for n in numbers)
        return LogBatch(lines, lines[-1].cursor)

    subscription.skip_through(Seq(3), lambda cursor: isinstance(cursor, Seq) and cursor.number <= 3)
    subscription.push(batch(1, 2))
    assert not subscription.pending()
    assert subscription.skipping
    subscription.push(batch(3, 4, 5))
    assert not subscription.skipping
    subscription.push(batch(1))  # no longer skipping: taken as it is
    delivery = await subscription.next()
    assert [line.text for b in delivery.batches for line in b.lines] == [
        "line 4",
        "line 5",
        "line 1",
    ]


def test_observers_see_every_batch_once_before_subscribers_and_can_leave(
    caplog: pytest.LogCaptureFixture,
):
    fanout = FanOut(Seq(0))
    seen: list[tuple[str, LogBatch]] = []
    subscription = fanout.add(Subscription(10, fanout.position))

    def observer(batch: LogBatch) -> None:
        seen.append(("observer", batch))
        assert not subscription.pending()  # observers run first

    def failing(batch: LogBatch) -> None:
        raise RuntimeError("a broken observer")

    remove = fanout.add_observer(observer)
    fanout.add_observer(failing)
    first = LogBatch((), Seq(1), "a notice")
    with caplog.at_level(logging.ERROR, logger="streams.logs.fanout"):
        fanout.publish(first)
    assert seen == [("observer", first)]
    assert subscription.pending()  # a failing observer does not stop the delivery
    assert "a broken observer" in caplog.text
    remove()
    remove()  # idempotent
    fanout.publish(LogBatch((), Seq(2), "later"))
    assert seen == [("observer", first)]


def test_the_last_subscriber_leaving_tells_the_source():
    emptied: list[bool] = []
    fanout = FanOut(Seq(0), on_empty=lambda: emptied.append(True))
    a = fanout.add(Subscription(1, fanout.position, on_close=fanout.remove))
    b = fanout.add(Subscription(1, fanout.position, on_close=fanout.remove))
    a.close()
    a.close()
    assert emptied == []
    b.close()
    assert emptied == [True]
    assert fanout.subscriber_count == 0


def test_sources_are_picked_by_name_and_a_location_scheme_picks_the_kind(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setitem(sources.KINDS, "memory", f"{__name__}:memory_source")
    configured = {"app": Path("/var/log/app.log"), "remote": Path("memory:app-lines")}
    with override_settings(STREAMBOARD_LOGS=configured):
        app = sources.get_source("app")
        remote = sources.get_source("remote")
        assert str(app.parse_cursor("5:10")) == "5:10"
        assert isinstance(remote, MemorySource)
        assert remote.name == "remote"
        assert list(sources.all_sources()) == ["app", "remote"]
        with pytest.raises(UnknownSource):
            sources.get_source("nope")
        with pytest.raises(Http404):
            sources.get_source_or_404("nope")
        with pytest.raises(ValueError, match="not a log cursor"):
            app.parse_cursor("seq-1")
    assert sources.source_kind("/var/log/x.log") == ("file", "/var/log/x.log")
    assert sources.source_kind("file:/var/log/x.log") == ("file", "/var/log/x.log")
    assert sources.source_kind("redis:app") == ("redis", "app")
    with pytest.raises(UnknownSource):
        sources.make_source("x", "gopher:hole")


def long_lines(count: int, width: int = 200, prefix: str = "INFO") -> list[str]:
    return [f"{prefix} {i:06d} " + "x" * width for i in range(count)]


async def test_a_burst_reaches_a_client_that_keeps_up_whole_in_capped_events():
    source = MemorySource(limit=1_000_000)
    source.write("x")
    events = follow_log(source, backfill=0)
    written = long_lines(5000)  # ~1 MiB in one batch: one read of a burst
    try:
        await anext(events)
        source.write(*written)
        got: list[str] = []
        sse: list[Event] = []
        while len(got) < len(written):
            async with asyncio.timeout(WAIT):
                event = lines_event(await anext(events))
            for message in lines_to_sse(event, "json"):
                sse.append(message)
                got += [line["text"] for line in json.loads(message.data)["lines"]]
    finally:
        await events.aclose()
    assert got == written
    assert len(sse) > 15
    assert max(len(message.data.encode()) for message in sse) <= EVENT_DATA_BYTES
    # Every event's id is the cursor after its own last line: a reconnect resumes exactly.
    ends = list(itertools.accumulate(len(json.loads(m.data)["lines"]) for m in sse))
    assert [m.id for m in sse] == [f"seq-{1 + end}" for end in ends]


@pytest.mark.parametrize("fmt", ["html", "json"])
def test_lines_whose_encoding_grows_are_still_cut_under_the_cap(fmt: Format):
    # Every character becomes an entity in HTML or an escape in JSON: 4-6x the text.
    parser = LineParser()
    lines = tuple(parser.parse("<\x01" * 2000, Seq(n)) for n in range(1, 200))
    events = list(lines_to_sse(LinesEvent(lines, Seq(199)), fmt))
    assert len(events) > 20
    assert all(len(event.data.encode()) <= EVENT_DATA_BYTES for event in events)
    assert events[-1].id == "seq-199"
    huge = (parser.parse("y" * (EVENT_DATA_BYTES + 10), Seq(1)),)
    (alone,) = lines_to_sse(LinesEvent(huge, Seq(1)), fmt)  # one line is never split
    assert "y" * (EVENT_DATA_BYTES + 10) in alone.data


def test_slices_keep_a_traceback_with_its_header_and_the_notice_first():
    parser = LineParser()
    texts_ = ["ERROR failed " + "e" * 10_000, "Traceback (most recent call last):"]
    texts_ += ["  File 'x'" + "f" * 5000 for _ in range(4)] + ["ValueError: boom", "INFO next"]
    lines = tuple(parser.parse(text, Seq(n)) for n, text in enumerate(texts_, 1))
    batch = LogBatch(lines, Seq(99), "rotated")
    slices = batch.slices(SLICE_BYTES)
    assert [len(s.lines) for s in slices] == [7, 1]  # cut before the next header only
    assert [s.notice for s in slices] == ["rotated", None]
    assert [str(s.cursor) for s in slices] == ["seq-7", "seq-99"]
    assert sum(s.size for s in slices) == batch.size
    small = LogBatch(lines[-1:], Seq(8))
    assert small.slices() == (small,)  # a small batch is published as it is


async def test_the_queue_is_bounded_in_bytes_and_a_read_takes_at_most_max_bytes():
    fanout = FanOut(Seq(0))
    parser = LineParser()
    sub = fanout.add(Subscription(1_000_000, fanout.position, byte_limit=10_000))
    number = itertools.count(1)

    def publish(count: int) -> None:
        lines = tuple(parser.parse("z" * 99, Seq(next(number))) for _ in range(count))
        fanout.publish(LogBatch(lines, lines[-1].cursor))

    for _ in range(10):
        publish(10)  # 1,000 bytes each: 10,000 queued, at the limit
    first = await sub.next(None, max_bytes=2_500)
    assert (first.skipped, [len(b.lines) for b in first.batches]) == (0, [10, 10])
    assert sub.queued_bytes == 8_000
    publish(10)
    publish(30)  # 3,000 more than the 10,000 bytes: what was queued is dropped
    rest = await sub.next()
    assert rest.skipped == 90
    assert str(rest.skipped_cursor) == "seq-110"
    assert [line.text for b in rest.batches for line in b.lines] == ["z" * 99] * 30
    assert sub.queued_bytes == sub.queued_lines == 0


@dataclass
class Socketless:
    """A push-mode target at the fan-out's seam: what it would write, and what the socket says.

    The real writer (``streams.http.push.DirectWriter``) needs a server's
    socket; tests/logs/test_push_mode.py drives it on a real server. Here
    the results are chosen, to pin what the fan-out does with each.
    """

    results: list[WriteResult]
    fail: bool = False
    written: list[bytes] = field(default_factory=list)
    key: str = "memory"

    def frame(self, batches: tuple[LogBatch, ...]) -> bytes:
        if self.fail:
            raise ValueError("cannot encode")
        return "".join(line.text for b in batches for line in b.lines).encode()

    def heartbeat_frame(self) -> bytes | None:
        return b":beat"

    def write(self, data: bytes) -> WriteResult:
        result = self.results.pop(0) if self.results else WriteResult.SENT
        if result is not WriteResult.REFUSED:
            self.written.append(data)
        return result


async def _pushing(
    source: MemorySource, target: Socketless
) -> tuple[Subscription, asyncio.Task[None]]:
    subscription = source.subscribe()
    task = asyncio.create_task(source.fanout.push_directly(subscription, target, None))
    await async_wait_until(lambda: subscription.direct)
    return subscription, task


@pytest.mark.parametrize(
    ("result", "queued"),
    [(WriteResult.BEHIND, []), (WriteResult.REFUSED, ["two"])],
    ids=["behind: written, then queued", "refused: queued"],
)
async def test_a_pushed_client_the_socket_cannot_take_goes_back_to_its_queue(
    result: WriteResult, queued: list[str]
):
    source = MemorySource()
    target = Socketless([WriteResult.SENT, result])
    subscription, task = await _pushing(source, target)
    source.write("one")
    assert target.written == [b"one"]
    assert subscription.direct
    source.write("two")
    await asyncio.wait_for(task, 1)  # push mode ended: the producer takes over
    assert not subscription.direct
    source.write("three")  # on the queue now, after whatever "two" became
    delivery = await subscription.next(max_bytes=None)
    assert [line.text for b in delivery.batches for line in b.lines] == [*queued, "three"]
    assert source.fanout.direct_count == 0
    subscription.close()


async def test_a_group_push_mode_cannot_encode_goes_to_the_queue_and_the_source_goes_on():
    source = MemorySource()
    other = Socketless([])
    failing = Socketless([], fail=True, key="failing")
    subscription, task = await _pushing(source, failing)
    _, other_task = await _pushing(source, other)
    source.write("cannot encode")  # the publish itself does not raise
    await asyncio.wait_for(task, 1)
    delivery = await subscription.next(max_bytes=None)
    assert [line.text for b in delivery.batches for line in b.lines] == ["cannot encode"]
    assert other.written == [b"cannot encode"]  # everyone else is served
    other_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other_task
    assert source.fanout.direct_count == 0
