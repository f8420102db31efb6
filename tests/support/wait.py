"""Bounded waits on real state: ``wait_until`` and its async twin ``async_wait_until``.

The sleep in each is the polling interval of a wait on a condition with a
deadline, never a guess at how long something takes. The async twin yields to
the event loop between polls, so the condition can be state that a task on the
same loop changes (a tailer's position, a subscription's queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

WAIT = 20.0


def wait_until(
    condition: Callable[[], object], timeout: float = WAIT, what: str = "", step: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        time.sleep(step)


# ASYNC109 would have the caller wrap ``asyncio.timeout``; the twin keeps ``wait_until``'s
# signature and its failure message instead.
async def async_wait_until(
    condition: Callable[[], object],
    timeout: float = WAIT,  # noqa: ASYNC109
    what: str = "",
    step: float = 0.01,
) -> None:
    """``wait_until`` for a test on the event loop: poll, letting other tasks run."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        await asyncio.sleep(step)
