"""A heartbeat around any producer: a comment whenever the producer is idle.

Proxies and browsers drop connections that say nothing for a minute or two;
a comment every ``interval`` seconds of silence keeps them open and lets the
server notice a vanished client (the write fails). The producer's pending
``__anext__`` is never cancelled by a heartbeat: the same step is awaited
again, so no item is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator


async def with_heartbeat[T, H](
    source: AsyncIterator[T], interval: float, beat: H
) -> AsyncGenerator[T | H]:
    """Yield from ``source``, and ``beat`` after every ``interval`` s without an item."""
    iterator = aiter(source)
    step: asyncio.Future[T] | None = None
    try:
        while True:
            if step is None:
                step = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({step}, timeout=interval)
            if not done:
                yield beat
                continue
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            finally:
                step = None
            yield item
    finally:
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
