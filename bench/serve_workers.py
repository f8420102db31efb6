#!/usr/bin/env python3
"""How ``serve --workers`` should share its port: one inherited socket, or ``SO_REUSEPORT``.

    .venv/bin/python bench/serve_workers.py --workers 2 --clients 1000

Starts ``--workers`` worker processes (``manage.py serve --listen-fd``, the
command ``serve --workers`` runs) twice: once all on one listening socket
bound here (``shared``), once each on its own ``SO_REUSEPORT`` socket
(``reuseport``). For each it opens ``--clients`` connections at once, each
sending ``GET /admin/login/``, and reports which worker accepted each one
(from /proc), the p50/p99 time to the full response, and errors. Then it
repeats the burst and SIGKILLs one worker after the first 10% of responses:
the connections that fail show what a crashed worker costs in each mode.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.processes import socket_owners  # noqa: E402

REQUEST = b"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def sockets(mode: str, workers: int) -> list[socket.socket]:
    def one(port: int, reuse_port: bool) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(2048)
        s.set_inheritable(True)
        return s

    first = one(0, mode == "reuseport")
    if mode == "shared":
        return [first] * workers
    port = first.getsockname()[1]
    return [first] + [one(port, True) for _ in range(workers - 1)]


def start_workers(listeners: list[socket.socket]) -> list[subprocess.Popen[bytes]]:
    processes, pipes = [], []
    for sock in listeners:
        read_end, write_end = os.pipe()
        argv = [sys.executable, "manage.py", "serve", "--listen-fd", str(sock.fileno())]
        processes.append(
            subprocess.Popen(
                [*argv, "--ready-fd", str(write_end)],
                cwd=ROOT,
                pass_fds=(sock.fileno(), write_end),
            )
        )
        os.close(write_end)
        pipes.append(read_end)
    for read_end in pipes:
        select.select([read_end], [], [], 60)
        os.close(read_end)
    return processes


class Progress:
    """Counts finished requests; ``reached(n)`` is an event set once ``n`` have finished."""

    def __init__(self, *marks: int) -> None:
        self.count = 0
        self.marks = {mark: asyncio.Event() for mark in marks}

    def finished_one(self) -> None:
        self.count += 1
        if self.count in self.marks:
            self.marks[self.count].set()

    async def reached(self, mark: int) -> None:
        await self.marks[mark].wait()


async def one_client(port: int, results: list, done: Progress, hold: asyncio.Event) -> None:
    """One keep-alive request; the connection stays open so /proc can say who accepted it."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        elapsed = time.perf_counter() - started
        ok = head.startswith(b"HTTP/1.1 200")
        results.append((writer.get_extra_info("socket"), elapsed, None if ok else head[:40]))
        done.finished_one()
        await hold.wait()
        writer.close()
    except (OSError, asyncio.IncompleteReadError, IndexError) as exc:
        results.append((None, time.perf_counter() - started, type(exc).__name__))
        done.finished_one()


async def burst(port: int, pids: list[int], clients: int, kill_after: int | None) -> list:
    results: list = []
    done = Progress(clients, *([kill_after] if kill_after else []))
    hold = asyncio.Event()
    tasks = [asyncio.create_task(one_client(port, results, done, hold)) for _ in range(clients)]
    if kill_after is not None:
        await done.reached(kill_after)
        os.kill(pids[0], signal.SIGKILL)
    await done.reached(clients)
    served = [r for r in results if r[2] is None]
    owners = socket_owners([sock for sock, _, _ in served], pids)
    hold.set()
    await asyncio.gather(*tasks)
    return [
        (owner, elapsed, None) for owner, (_, elapsed, _) in zip(owners, served, strict=True)
    ] + [(None, elapsed, error) for _, elapsed, error in results if error is not None]


def report(mode: str, title: str, results: list, pids: list[int]) -> None:
    owners = collections.Counter(owner for owner, _, error in results if error is None)
    errors = collections.Counter(str(error) for _, _, error in results if error is not None)
    times = sorted(elapsed for _, elapsed, error in results if error is None)
    split = " / ".join(str(owners.get(pid, 0)) for pid in pids)
    p50 = statistics.median(times) * 1000 if times else float("nan")
    p99 = times[int(len(times) * 0.99) - 1] * 1000 if times else float("nan")
    print(
        f"| {mode} | {title} | {split} | {p50:.0f} | {p99:.0f} | "
        f"{sum(errors.values())} {dict(errors) if errors else ''} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    print("| mode | burst | accepted per worker | p50 ms | p99 ms | failed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode in ("shared", "reuseport"):
        for title, kill in (("all alive", None), ("worker 1 SIGKILLed", args.clients // 10)):
            listeners = sockets(mode, args.workers)
            port = listeners[0].getsockname()[1]
            processes = start_workers(listeners)
            pids = [p.pid for p in processes]
            try:
                asyncio.run(burst(port, pids, 50, None))  # warm-up: imports, templates
                results = asyncio.run(burst(port, pids, args.clients, kill))
                report(mode, title, results, pids)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait()
                for sock in set(listeners):
                    sock.close()


if __name__ == "__main__":
    main()
