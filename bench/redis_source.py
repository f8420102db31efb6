#!/usr/bin/env python3
"""The Redis log source's two figures: shipper throughput and the latency it adds.

    .venv/bin/python -m bench.redis_source                       # ~1 minute
    .venv/bin/python -m bench.redis_source --lines 500000 --seconds 20 --clients 100

Not part of ``make test``. Everything runs in a temporary directory with a
private Redis (no persistence) and SQLite database, on free ports:

1. **Shipper throughput.** ``--lines`` lines of 160 bytes are written to a
   file first, then ``manage.py ship_log`` is started pinned to one core
   (``taskset -c 0``) and timed from its ready line until ``XLEN`` counts
   every line. Reported: lines/s of wall time, and lines per CPU-second of
   the shipper (user + system, from ``/proc``): the "one core" figure,
   independent of what else the machine runs. Target: ≥ 50,000 lines/s.
2. **End-to-end latency**, line written → line parsed by an SSE client, for
   a file source and a Redis source served by the same ``manage.py serve``
   (``STREAMBOARD_LOGS=file=...,web=redis:web``), one after the other, each
   for ``--seconds`` at ``--rate`` lines/s to ``--clients`` clients. The
   writer stamps each line with ``time.monotonic_ns()`` (one clock for every
   process of the machine); the client subtracts it from its own reading
   when the line's event has been parsed. For the Redis source the line
   goes file → shipper → Redis → the server's ``XREAD`` → client. Target:
   the Redis source adds at most 5 ms p50 over the file source.

Lines that never arrive or arrive twice are counted and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.run import SESSION_CODE

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT.parent / "shared" / "bench").resolve()
LINE_BYTES = 160


def log(msg: str) -> None:
    print(f"[redis bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(process: subprocess.Popen[bytes], marker: bytes, timeout: float = 60.0) -> None:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if readable else b""
    if marker not in line:
        raise SystemExit(f"not ready: {line!r}")


def added(client: redis.Redis, key: str) -> int:
    try:
        info: dict[str, Any] = client.xinfo_stream(key)
    except redis.ResponseError:
        return 0  # not created yet
    return int(info["entries-added"])


def line_text(seq: int) -> str:
    head = f"INFO bench {seq} {time.monotonic_ns()} "
    return head + "x" * (LINE_BYTES - 1 - len(head))


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.py = sys.executable
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.redis_pid = 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "STREAMBOARD_LOGS")}
        env.update(
            STREAMBOARD_VAR_DIR=str(self.work),
            DATABASE_URL=f"sqlite:///{self.work / 'bench.sqlite3'}",
            REDIS_URL=self.redis_url,
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def spawn(self, cmd: list[str], **extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env(**extra), stdout=subprocess.PIPE, stderr=None
        )
        self.processes.append(process)
        return process

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        process = subprocess.Popen(
            [
                *(binary, "--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.work)),
            ],
            stdout=subprocess.DEVNULL,
        )
        self.processes.append(process)
        self.redis_pid = process.pid
        with redis.Redis.from_url(self.redis_url) as client:
            for _ in range(600):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
        raise SystemExit("redis-server did not answer")

    def session(self) -> str:
        subprocess.run(
            [self.py, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
        )
        out = subprocess.run(
            [self.py, "manage.py", "shell", "-c", SESSION_CODE],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        match = re.search(r"SESSION (\w+)", out)
        if match is None:
            raise SystemExit(f"no session: {out!r}")
        return match.group(1)

    # -- 1. throughput ------------------------------------------------------

    def throughput(self) -> dict[str, float]:
        lines = self.args.lines
        path = self.work / "throughput.log"
        with path.open("w") as f:
            for seq in range(lines):
                f.write(line_text(seq) + "\n")
        cmd = [self.py, "manage.py", "ship_log", "tput", str(path), "--host", "bench"]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", "0", *cmd]
        shipper = self.spawn(cmd)
        wait_ready(shipper, b"ship_log: shipping")
        start_cpu, start = cpu_seconds(shipper.pid), time.monotonic()
        redis_cpu = cpu_seconds(self.redis_pid)
        with redis.Redis.from_url(self.redis_url, decode_responses=True) as client:
            # Entries ever added, not XLEN: the stream is trimmed (MAXLEN ~) as it grows.
            while added(client, "streamboard:log:tput") < lines:
                time.sleep(0.002)
        wall = time.monotonic() - start
        cpu = cpu_seconds(shipper.pid) - start_cpu
        redis_cpu = cpu_seconds(self.redis_pid) - redis_cpu
        stop(shipper)
        return {
            "lines": lines,
            "wall_s": wall,
            "cpu_s": cpu,
            "redis_cpu_s": redis_cpu,
            "lines_per_s": lines / wall,
            "lines_per_cpu_s": lines / cpu if cpu else float("inf"),
        }

    # -- 2. latency ---------------------------------------------------------

    def latency(self, session: str) -> dict[str, dict[str, float]]:
        file_log = self.work / "file.log"
        shipped_log = self.work / "shipped.log"
        file_log.touch()
        shipped_log.touch()
        port = free_port()
        server = self.spawn(
            [self.py, "manage.py", "serve", "--port", str(port)],
            STREAMBOARD_LOGS=f"file={file_log},web=redis:web",
        )
        wait_ready(server, b"serving on")
        shipper = self.spawn(
            [self.py, "manage.py", "ship_log", "web", str(shipped_log), "--host", "bench"]
        )
        wait_ready(shipper, b"ship_log: shipping")
        results = {}
        for name, source, path in (("file", "file", file_log), ("redis", "web", shipped_log)):
            url = f"http://127.0.0.1:{port}/streams/logs/{source}/?format=json&backfill=0"
            results[name] = asyncio.run(self.measure(url, path, session))
            log(f"{name}: {fmt_latency(results[name])}")
        if self.args.fanout_clients:
            for name, source, path in (("file", "file", file_log), ("redis", "web", shipped_log)):
                url = f"http://127.0.0.1:{port}/streams/logs/{source}/?format=json&backfill=0"
                found = results[f"{name}_fanout"] = self.fanout(url, path, session, server.pid)
                log(f"{name}, {self.args.fanout_clients} clients: {fmt_latency(found)}")
        return results

    def fanout(self, url: str, path: Path, session: str, server_pid: int) -> dict[str, float]:
        """``../shared/bench/sse_fanout.py``: many clients, 10 lines/s appended to ``path``.

        For the Redis source ``path`` is the shipped file, so each line goes
        file -> shipper -> Redis -> server -> every client.
        """
        cmd = [
            self.args.client_python,
            str(SHARED / "sse_fanout.py"),
            *("-n", str(self.args.fanout_clients), "--events", "50", "--interval", "0.1"),
            *("--append-to", str(path), "--server-pid", str(server_pid), "-q"),
            *("--header", f"Cookie: sessionid={session}", url),
        ]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"sse_fanout failed ({done.returncode}): {done.stderr[-800:]}")
        out = json.loads(done.stdout)
        latency = out["latency_ms"]
        return {
            "p50_ms": latency["p50"],
            "p99_ms": latency["p99"],
            "max_ms": latency["max"],
            "lines": float(out["events"]),
            "clients": float(out["connect"]["ok"]),
            "lost": float(out["lost"]),
            "duplicates": float(out["duplicates"]),
        }

    async def measure(self, url: str, path: Path, session: str) -> dict[str, float]:
        clients = self.args.clients
        total = int(self.args.rate * self.args.seconds)
        received: list[dict[int, int]] = [{} for _ in range(clients)]
        duplicates = [0]
        connected = asyncio.Semaphore(0)
        done = asyncio.Event()
        limits = httpx.Limits(max_connections=clients + 10)
        timeout = httpx.Timeout(60.0, connect=30.0)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:

            async def client(index: int) -> None:
                seen = received[index]
                headers = {"Cookie": f"sessionid={session}"}
                async with http.stream("GET", url, headers=headers) as response:
                    first = True
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        if first:
                            first = False
                            connected.release()
                        now = time.monotonic_ns()
                        data = json.loads(line[5:])
                        for item in data.get("lines", ()):
                            parts = item["text"].split(" ", 4)
                            seq, stamp = int(parts[2]), int(parts[3])
                            if seq in seen:
                                duplicates[0] += 1
                            seen[seq] = now - stamp
                        if len(seen) >= total:
                            return

            tasks = [asyncio.create_task(client(i)) for i in range(clients)]
            for _ in range(clients):
                await connected.acquire()
            writer = threading.Thread(target=self.write, args=(path, total), daemon=True)
            writer.start()
            try:
                async with asyncio.timeout(self.args.seconds + 30):
                    await asyncio.gather(*tasks)
            except TimeoutError:
                pass
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            done.set()
            writer.join()
        samples = sorted(ms for seen in received for ms in seen.values())
        got = sum(len(seen) for seen in received)
        if not samples:
            raise SystemExit(f"no line reached a client of {url}")
        return {
            "lines": total,
            "clients": clients,
            "lost": total * clients - got,
            "duplicates": duplicates[0],
            "p50_ms": statistics.median(samples) / 1e6,
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1e6,
            "max_ms": samples[-1] / 1e6,
        }

    def write(self, path: Path, total: int) -> None:
        """``total`` lines at ``--rate`` lines/s, each written (unbuffered) when it is due."""
        rate = self.args.rate
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            start = time.monotonic()
            written = 0
            while written < total:
                due = min(total, int((time.monotonic() - start) * rate) + 1)
                while written < due:
                    os.write(fd, (line_text(written) + "\n").encode())
                    written += 1
                time.sleep(max(0.0, start + written / rate - time.monotonic()))
        finally:
            os.close(fd)

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
            if process.stdout is not None:
                process.stdout.close()


def fmt_latency(r: dict[str, float]) -> str:
    return (
        f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms "
        f"({r['lines']:.0f} lines x {r['clients']:.0f} clients, lost {r['lost']:.0f}, "
        f"duplicates {r['duplicates']:.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="throughput: lines shipped")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: lines per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="latency: per source")
    parser.add_argument("--clients", type=int, default=1, help="latency: SSE clients")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--fanout-clients",
        type=int,
        default=0,
        help="also: this many clients at 10 lines/s through ../shared/bench/sse_fanout.py",
    )
    parser.add_argument(
        "--client-python",
        default=str(ROOT / "var" / "bench" / "venv" / "bin" / "python"),
        help="the bench venv's Python, for sse_fanout.py",
    )
    args = parser.parse_args()
    # SIGTERM (``timeout``) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="streamboard-redis-bench-"))
    bench = Bench(args, work)
    try:
        bench.start_redis()
        session = bench.session()
        tput = bench.throughput()
        log(
            f"shipper: {tput['lines_per_s']:,.0f} lines/s wall, "
            f"{tput['lines_per_cpu_s']:,.0f} lines per CPU-second "
            f"({tput['lines']:,} lines in {tput['wall_s']:.2f} s, {tput['cpu_s']:.2f} CPU-s; "
            f"Redis {tput['redis_cpu_s']:.2f} CPU-s)"
        )
        latency = bench.latency(session)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    added = latency["redis"]["p50_ms"] - latency["file"]["p50_ms"]
    print(f"shipper throughput: {tput['lines_per_s']:,.0f} lines/s (target >= 50,000)")
    print(f"shipper per CPU-second: {tput['lines_per_cpu_s']:,.0f} lines")
    print(f"file source:  {fmt_latency(latency['file'])}")
    print(f"redis source: {fmt_latency(latency['redis'])}")
    print(f"redis adds {added:+.2f} ms p50 (target <= 5 ms)")
    if args.fanout_clients:
        fanned = latency["redis_fanout"]["p50_ms"] - latency["file_fanout"]["p50_ms"]
        print(f"file source, {args.fanout_clients} clients:  {fmt_latency(latency['file_fanout'])}")
        print(
            f"redis source, {args.fanout_clients} clients: {fmt_latency(latency['redis_fanout'])}"
        )
        print(f"redis adds {fanned:+.2f} ms p50 at {args.fanout_clients} clients (target <= 5 ms)")
    if args.json is not None:
        args.json.write_text(json.dumps({"throughput": tput, "latency": latency}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
