"""streams.http.heartbeat: a comment while the producer is idle, and nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streams.http.heartbeat import with_heartbeat


async def test_it_beats_while_the_producer_is_idle_and_loses_no_item():
    release = asyncio.Event()
    closed = asyncio.Event()

    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            await release.wait()
            yield "second"
        finally:
            closed.set()

    seen: list[str] = []
    async for item in with_heartbeat(producer(), 0.01, "beat"):
        seen.append(item)
        if seen.count("beat") == 3:
            release.set()
    assert seen[0] == "first"
    assert seen[1:4] == ["beat", "beat", "beat"]
    assert seen[-1] == "second"
    assert closed.is_set()


async def test_closing_the_wrapper_closes_the_producer():
    closed = asyncio.Event()

    async def producer() -> AsyncIterator[str]:
        try:
            while True:
                await asyncio.Event().wait()
                yield "never"
        finally:
            closed.set()

    stream = with_heartbeat(producer(), 0.01, "beat")
    assert await anext(stream) == "beat"
    await stream.aclose()
    assert closed.is_set()


async def test_a_producer_error_reaches_the_consumer():
    async def producer() -> AsyncIterator[str]:
        yield "first"
        raise LookupError("the producer broke")

    stream = with_heartbeat(producer(), 10, "beat")
    assert await anext(stream) == "first"
    with pytest.raises(LookupError, match="the producer broke"):
        await anext(stream)


async def test_it_reads_nothing_ahead_of_a_stalled_consumer():
    produced: list[int] = []

    async def producer() -> AsyncIterator[int]:
        for n in range(100):
            produced.append(n)
            yield n

    stream = with_heartbeat(producer(), 10, "beat")
    assert await anext(stream) == 0
    for _ in range(10):  # let the producer run as far as it can
        await asyncio.sleep(0)
    assert produced == [0]
    await stream.aclose()
