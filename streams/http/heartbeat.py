"""A heartbeat around any producer: a comment whenever the producer is idle.

Proxies and browsers drop connections that say nothing for a minute or two;
a comment every ``interval`` seconds of silence keeps them open and lets the
server notice a vanished client (the write fails).

The producer runs in one long-lived task that takes the next item only
when the consumer asks for it and hands it over through a queue; the
consumer waits on that queue with a timeout. A timeout therefore never
cancels the producer's pending step (so no item is lost), and the per-item
cost is a hand-over rather than a new task and an ``asyncio.wait`` per item:
with 1,000 clients at 10 events/s this wrapper runs 10,000 times a second.
Nothing is read ahead of the consumer: while the client's socket is full the
producer is not asked, so what piles up stays in the bounded queue upstream
(which overflows into "N skipped") rather than in batches held here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final


class _End:
    """Put in the hand-over queue when the producer is exhausted or failed."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


_DONE: Final = _End()


async def with_heartbeat[T, H](
    source: AsyncIterator[T], interval: float, beat: H
) -> AsyncGenerator[T | H]:
    """Yield from ``source``, and ``beat`` after every ``interval`` s without an item."""
    handover: asyncio.Queue[T | _End] = asyncio.Queue()
    demand = asyncio.Event()

    async def pump() -> None:
        try:
            while True:
                await demand.wait()
                demand.clear()
                handover.put_nowait(await anext(source))
        except StopAsyncIteration:
            handover.put_nowait(_DONE)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # handed to the consumer, which re-raises it
            handover.put_nowait(_End(error))

    task = asyncio.ensure_future(pump())
    try:
        while True:
            demand.set()
            while True:
                try:
                    async with asyncio.timeout(interval):
                        item = await handover.get()
                    break
                except TimeoutError:
                    yield beat
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
