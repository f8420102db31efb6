#!/usr/bin/env python3
"""CPU per delivery of the fan-out, producer and SSE encoder, without HTTP.

    .venv/bin/python bench/delivery_cost.py [-n 1000] [--events 200] [--rounds 5]

``-n`` clients each run ``sse_events(follow_log(source))`` and frame every
message (``streams.http.sse.encode``), as the view does, on one event loop;
a source publishes ``--events`` one-line batches (the bench's 160-byte
lines), each once every client has framed the previous one. Reported: CPU
microseconds (``time.process_time``) per (client, event) delivery, the
median of ``--rounds``. Process CPU time, so other work on a shared machine
moves it much less than wall-clock latency. Run it in another checkout
(``python /path/to/checkout/bench/delivery_cost.py``) to compare two versions
of the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")


async def one_round(clients: int, events: int) -> float:
    from streams.http.sse import encode
    from streams.logs.encoding import sse_events
    from streams.logs.follow import follow_log
    from tests.logs.test_fanout import MemorySource

    source = MemorySource(limit=10_000)
    source.write("INFO start")
    received = [0] * clients
    progress = asyncio.Event()

    async def client(index: int) -> None:
        async for message in sse_events(follow_log(source, backfill=0, idle=15.0), "json"):
            encode(message)
            received[index] += 1
            progress.set()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]

    async def everyone_has(count: int) -> None:
        while min(received) < count:
            progress.clear()
            await progress.wait()

    await everyone_has(1)  # the opening event: every client is subscribed
    start = time.process_time()
    for number in range(events):
        source.write(f"INFO BENCH:x:E:{number}:{time.time_ns()} " + "p" * 110)
        await everyone_has(2 + number)
    spent = time.process_time() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return spent / (clients * events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    costs = [asyncio.run(one_round(args.n, args.events)) for _ in range(args.rounds)]
    print(
        f"{ROOT.name}: {statistics.median(costs):.2f} us CPU per delivery "
        f"(rounds: {', '.join(f'{c:.2f}' for c in costs)})"
    )


if __name__ == "__main__":
    main()
