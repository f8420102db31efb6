#!/usr/bin/env python3
"""``make bench``: Streamboard side by side with the reference peers, in one run.

Runs from the project root in the bench's own venv (``var/bench/venv``, built
by ``make bench`` from ``../shared/bench/requirements.txt`` so the project's
pinned packages are never touched); Streamboard itself runs with the
project's venv (``--project-python``).

1. **SSE fan-out**: ``../shared/bench/run_anchors.py sse`` with the reference
   peers plus Streamboard as an ``--extra-system`` (``manage.py serve`` with
   ``STREAMBOARD_LOGS=bench={log}``, streaming
   ``/streams/logs/bench/?format=json&backfill=0`` with a staff session cookie).
   The harness appends marker lines to the tailed file and times them.
2. **NDJSON export**: ``../shared/bench/ndjson_export.py`` against
   ``/exports/dashboard.order.ndjson?id__lte=ROWS`` and against the raw floor
   (``bench/raw_orders.py``: sqlite3 + orjson writing byte-identical lines,
   checked first), interleaved by run_anchors' own loop, with a fast client
   and a 1 MiB/s client (bounded in time: 1M rows at 1 MiB/s would take
   about 7 minutes).
3. **Background export**: the same producer without HTTP (the ExportJob task
   if it is there, otherwise ``manage.py export`` to /dev/null).
4. **Redis source** (``bench/redis_source.py``) and **nginx cluster**
   (``bench/cluster.py``): parts ``redis`` and ``cluster``, each starting its
   own Redis / nginx and servers; their tables go into the report as printed.
5. **History search** (``bench/search.py``, part ``search``): 1 GB of log
   plus a rotated and a gzipped sibling (200 MB with ``BENCH_QUICK=1``),
   generated once into ``var/bench/search-<MB>``, against GNU grep.

Everything lands in ``var/bench/results/<UTC time>/``: the JSONL records,
run_anchors' full summary, and ``report.md`` (machine, commands, compact
tables, each target met or missed), which is also printed.

Bench data: ``var/bench/streamboard.sqlite3``, seeded once with
``manage.py seed_demo --rows 1000000`` (about 40 s) and reused (seed_demo
only tops up); it also holds the bench staff user and its session.

``BENCH_QUICK=1`` (or ``--quick``): 1,000 clients, 100,000 rows, 10 s slow
client: a smoke run of about 3 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT.parent / "shared" / "bench").resolve()
VAR = ROOT / "var" / "bench"
DB = VAR / "streamboard.sqlite3"
SEED_ROWS = 1_000_000
SSE_PATH = "/streams/logs/bench/?format=json&backfill=0"
EXPORT_PATH = "/exports/dashboard.order.ndjson?id__lte={rows}"
SSE_PEERS = "starlette-shared,django-uvicorn,django-daphne"
STREAMBOARD = "streamboard"
#: The same server with every stream on the ordinary ASGI path (STREAMBOARD_PUSH=0),
#: and with two server processes on one port (serve --workers 2).
STREAMBOARD_QUEUE = "streamboard-queue"
STREAMBOARD_2W = "streamboard-2w"
#: Issue 7's targets: latency at most this much of starlette-shared's, same run.
LATENCY_TARGET = 0.5
LATENCY_TARGET_2W_P99 = 0.35
#: Issue 7's target for the streamed export of 1M rows: this much of the raw floor's rows/s.
NDJSON_TARGET = 0.85
RAW = "raw-orders-tcp"
SLOW_KIB_S = 1024
MIB = 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def project_env() -> dict[str, str]:
    """The environment every Streamboard process of the bench gets: the bench DB, quiet logs."""
    env = dict(os.environ)
    for name in ("DEBUG", "STREAMBOARD_LOGS", "REDIS_URL"):
        env.pop(name, None)
    env.update(
        STREAMBOARD_VAR_DIR=str(VAR),
        DATABASE_URL=f"sqlite:///{DB}",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(py: str, *args: str, capture: bool = False) -> str:
    cp = subprocess.run(
        [py, "manage.py", *args],
        cwd=ROOT,
        env=project_env(),
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return cp.stdout or ""


SESSION_CODE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user, created = get_user_model().objects.get_or_create(username="bench")
# Only on a new user: a fresh unusable password changes the session hash and would
# sign out every other session of this user (a second bench run at the same time).
if created or user.has_usable_password():
    user.set_unusable_password()
user.is_staff = user.is_superuser = user.is_active = True
user.save()
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION", session.session_key)
"""


def prepare_db(py: str, rows: int) -> str:
    """Migrate and top up the cached bench DB; a fresh staff session; its key."""
    VAR.mkdir(parents=True, exist_ok=True)
    manage(py, "migrate", "--verbosity", "0")
    t0 = time.monotonic()
    manage(py, "seed_demo", "--rows", str(rows))
    log(f"bench DB ready ({DB}, seed step {time.monotonic() - t0:.1f}s)")
    out = manage(py, "shell", "-c", SESSION_CODE, capture=True)
    match = re.search(r"SESSION (\w+)", out)
    if not match:
        raise SystemExit(f"could not create the bench session: {out!r}")
    return match.group(1)


def check_identical(py: str, rows: int) -> bool:
    """The raw floor writes the same bytes as Streamboard's export (else the floor is unfair)."""
    raw = subprocess.run(
        [sys.executable, "bench/raw_orders.py", "--db", str(DB), "--rows", str(rows), "--out", "-"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    ours = subprocess.run(
        [py, "manage.py", "export", "dashboard.order", f"id__lte={rows}"],
        cwd=ROOT,
        env=project_env(),
        check=True,
        capture_output=True,
    ).stdout
    return raw == ours and len(raw) > 0


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        sqlite = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout
    except OSError:  # no sqlite3 CLI: only the version line is missing
        sqlite = ""
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite_cli": sqlite.split()[0] if sqlite else None,
        "load_avg_at_start": os.getloadavg(),
    }


def source_state() -> str:
    """The commit measured, and the files that differed from it (the tree is shared)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--short", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    if not head:
        return "not a git checkout"
    return f"commit {head}" + (
        f", with uncommitted changes to {', '.join(changed)}" if changed else ", clean"
    )


def versions(py: str) -> str:
    code = (
        "import importlib.metadata as m\n"
        "for p in ('django','daphne','twisted','channels','orjson'):\n"
        "    print(p, m.version(p))"
    )
    return subprocess.run([py, "-c", code], capture_output=True, text=True).stdout.strip()


# ---- SSE ---------------------------------------------------------------------


def run_sse(a: argparse.Namespace, py: str, session: str, out: Path, work: Path) -> list[str]:
    """One run_anchors invocation per (clients, rounds) step, all into the same JSONL."""
    serve = f"{shlex.quote(py)} manage.py serve --port {{port}}"
    server = f"env STREAMBOARD_LOGS=bench={{log}} {serve}"
    queue = f"env STREAMBOARD_LOGS=bench={{log}} STREAMBOARD_PUSH=0 {serve}"
    two = f"env STREAMBOARD_LOGS=bench={{log}} {serve} --workers 2"
    extra = [f"{STREAMBOARD}|{SSE_PATH}|{server}", f"{STREAMBOARD_QUEUE}|{SSE_PATH}|{queue}"]
    if not a.quick:
        extra.append(f"{STREAMBOARD_2W}|{SSE_PATH}|{two}")
    commands = []
    for clients, rounds in a.sse_plan:
        cmd = [
            sys.executable,
            str(SHARED / "run_anchors.py"),
            "sse",
            "--clients",
            str(clients),
            "--events",
            str(a.events),
            "--interval",
            str(a.interval),
            "--rounds",
            str(rounds),
            "--systems",
            a.sse_peers,
            *(arg for system in extra for arg in ("--extra-system", system)),
            f"--client-arg=--header=Cookie: sessionid={session}",
            "--out",
            str(out),
            "--work",
            str(work / "sse"),
            "--max-minutes",
            str(a.sse_max_minutes),
            "--run-seconds",
            "150",
        ]
        log("SSE: " + shlex.join(cmd).replace(session, "KEY"))
        subprocess.run(cmd, cwd=ROOT, env=project_env(), check=True)
        commands.append(shlex.join(cmd).replace(session, "$SESSION"))
    return commands


# ---- Redis source and nginx cluster ------------------------------------------

#: Parts run by their own scripts (they start Redis / nginx themselves); their
#: printed tables go into the report as they are.
EXTRA_PARTS = {
    "redis": "Redis log source: shipper throughput, line-to-client latency beside a file",
    "cluster": "SSE through nginx to two server processes, beside one process direct",
    "search": "History search against GNU grep on the same files",
}


def run_extra(a: argparse.Namespace, py: str, part: str, out_dir: Path) -> list[str]:
    """``bench/redis_source.py``, ``bench/cluster.py`` or ``bench/search.py``, project Python."""
    if part == "redis":
        args = ["-m", "bench.redis_source", "--lines", "50000" if a.quick else "200000"]
        args += ["--seconds", "5" if a.quick else "10", "--clients", "1"]
        args += ["--fanout-clients", "1000", "--client-python", sys.executable]
    elif part == "search":
        # 1 GB as issue 9 asks (generated once into var/bench/search-<size>, then reused).
        size = "200" if a.quick else "1024"
        args = ["bench/search.py", "--size-mb", size, "--dir", f"var/bench/search-{size}"]
    else:
        args = ["bench/cluster.py", "--clients", "1000", "--events", "20" if a.quick else "50"]
    cmd = [py, *args]
    log(f"{part}: {shlex.join(cmd)}")
    # Their own databases and services in temporary directories: not the bench DB.
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    failed = f"failed ({done.returncode}): {done.stderr[-800:]}"
    text = done.stdout if done.returncode == 0 else failed
    (out_dir / f"{part}.txt").write_text(f"```sh\n{shlex.join(cmd)}\n```\n\n{text}")
    return [shlex.join(cmd)]


# ---- NDJSON ------------------------------------------------------------------


def run_ndjson(
    a: argparse.Namespace, py: str, session: str, out_fast: Path, out_slow: Path, work: Path
) -> list[str]:
    """Both systems through run_anchors' own interleaved loop (it knows raw TCP systems)."""
    sys.path.insert(0, str(SHARED))
    anchors: Any = importlib.import_module("run_anchors")
    anchors.NDJSON_SYSTEMS.extend(
        [
            anchors.System(
                STREAMBOARD,
                f"{shlex.quote(py)} manage.py serve --port {{port}}",
                EXPORT_PATH,
                cwd=ROOT,
            ),
            anchors.System(
                RAW,
                f"{shlex.quote(sys.executable)} bench/raw_orders.py --db {{db}} --rows {{rows}} "
                "--listen 127.0.0.1:{port}",
                "",
                cwd=ROOT,
                kind="tcp",
            ),
        ]
    )
    os.environ.update(project_env())  # the servers inherit it
    cookie = f"--header=Cookie: sessionid={session}"
    runs = [
        (out_fast, a.rows, a.nd_rounds, [cookie], a.fast_seconds),
        (out_slow, a.slow_rows, 1, [cookie, f"--throttle-kib-s={SLOW_KIB_S}"], a.slow_seconds),
    ]
    commands = []
    for out, rows, rounds, client_args, seconds in runs:
        ns = argparse.Namespace(
            extra_system=[],
            systems=f"{STREAMBOARD},{RAW}",
            work=str(work / "ndjson"),
            db=str(DB),
            rows=rows,
            rounds=rounds,
            seed="streamboard",
            max_minutes=a.nd_max_minutes,
            out=str(out),
            run_seconds=seconds,
            client_arg=client_args,
        )
        log(f"NDJSON rows={rows} rounds={rounds} client args {client_args[1:]} limit {seconds}s")
        anchors.cmd_ndjson(ns)
        commands.append(
            "run_anchors ndjson loop: "
            + " ".join(
                f"--{k.replace('_', '-')}={v}"
                for k, v in vars(ns).items()
                if k in ("systems", "rows", "rounds", "run_seconds")
            )
            + " "
            + " ".join(
                shlex.quote(x.replace(session, "$SESSION")) for x in ["--client-arg", *client_args]
            )
        )
    return commands


# ---- background export -------------------------------------------------------


def run_background(py: str, rows: int) -> dict[str, Any]:
    """The same producer off the request path; the ExportJob task when it exists."""
    task_module = ROOT / "streams" / "tasks.py"
    env = project_env()
    if task_module.exists():
        code = BACKGROUND_TASK_CODE.replace("ROWS", str(rows))
        t0 = time.perf_counter()
        cp = subprocess.run(
            [py, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        found = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
        if cp.returncode == 0 and found:
            rec: dict[str, Any] = json.loads(found[-1])
            rec["process_wall_s"] = round(wall, 3)
            return rec
        log(f"background task run failed ({cp.returncode}): {cp.stderr[-800:]}")
    # Fallback: the CLI export drives the same producer (iter_export) synchronously. Written
    # to stdout redirected to /dev/null: --output /dev/null would rename a .part file over it.
    cmd = [py, "manage.py", "export", "dashboard.order", f"id__lte={rows}"]
    startup = _timed(
        [py, "manage.py", "export", "dashboard.order", "id__lte=0"], env
    )  # interpreter + Django start-up, subtracted
    timed = _timed(cmd, env)
    seconds = timed["wall_s"] - startup["wall_s"]
    return {
        "method": "manage.py export dashboard.order id__lte=N > /dev/null "
        "(the ExportJob task was not there; same producer, iter_export)",
        "rows": rows,
        "wall_s": timed["wall_s"],
        "startup_s": startup["wall_s"],
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "peak_rss_kib": timed["maxrss_kib"],
    }


BACKGROUND_TASK_CODE = """
import json, resource, time
from django.contrib.auth import get_user_model
from streams.jobs.models import ExportJob
from streams.exports.task import execute_job
user = get_user_model().objects.get(username="bench")
job = ExportJob.objects.create(
    user=user,
    model_label="dashboard.order",
    query={"params": {"id__lte": ["ROWS"]}},
    format="ndjson",
)
t0 = time.perf_counter()
status = execute_job(job.pk)
seconds = time.perf_counter() - t0
job.refresh_from_db()
path = job.result_path()
size = path.stat().st_size if path else None
if path:
    path.unlink()
job.delete()
print(json.dumps({
    "method": "streams.exports.task.execute_job (the run_export_job task's body) called in-process",
    "status": status, "rows": job.rows_done, "bytes": size, "seconds": round(seconds, 3),
    "rows_per_s": round(job.rows_done / seconds),
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def _timed(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=devnull, stderr=devnull)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed")
    return {"wall_s": round(wall, 3), "maxrss_kib": usage.ru_maxrss}


# ---- report ------------------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def get(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def median(recs: list[dict[str, Any]], dotted: str) -> float | None:
    vals = [get(r, dotted) for r in recs if not r.get("error")]
    nums = [float(v) for v in vals if v is not None]
    return statistics.median(nums) if nums else None


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def sse_tables(recs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    lines = [
        "| system | clients | connected | connect p99 ms | KiB/conn | latency p50 ms | "
        "latency p99 ms | lost | duplicates | server CPU % (events) | client CPU % | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts: list[str] = []
    systems = list(dict.fromkeys(r["system"] for r in recs))
    for n in sorted({r["clients"] for r in recs}):
        med: dict[str, dict[str, float | None]] = {}
        for name in systems:
            runs = [r for r in recs if r["system"] == name and r["clients"] == n]
            if not runs:
                continue
            ok = [r for r in runs if not r.get("error")]
            m = {
                key: median(runs, path)
                for key, path in {
                    "conn": "connect.ok",
                    "cp99": "connect.ms.p99",
                    "kib": "server.kib_per_conn",
                    "p50": "latency_ms.p50",
                    "p99": "latency_ms.p99",
                    "lost": "lost",
                    "dup": "duplicates",
                    "cpu": "server.cpu_events_pct",
                    "ccpu": "client.cpu_events_pct",
                }.items()
            }
            med[name] = m
            errors = "; ".join(str(r["error"])[:80] for r in runs if r.get("error"))
            lines.append(
                f"| {'**' + name + '**' if name == STREAMBOARD else name} | {n:,} | "
                f"{fmt(m['conn'], 0)} | {fmt(m['cp99'])} | {fmt(m['kib'])} | {fmt(m['p50'])} | "
                f"{fmt(m['p99'])} | {fmt(m['lost'], 0)} | {fmt(m['dup'], 0)} | {fmt(m['cpu'])} | "
                f"{fmt(m['ccpu'])} | {len(ok)}{' (error: ' + errors + ')' if errors else ''} |"
            )
        sb, best = med.get(STREAMBOARD), med.get("starlette-shared")
        if not sb or sb["p50"] is None:
            verdicts.append(f"- N={n:,}: Streamboard produced no latency figures (see errors).")
            continue
        if best and best["p50"] is not None and best["p99"] is not None:
            for q in ("p50", "p99"):
                ours, theirs = sb[q], best[q]
                if ours is None or theirs is None:
                    continue
                ratio = ours / theirs
                verdicts.append(
                    f"- N={n:,} latency {q}: Streamboard {fmt(ours)} ms vs starlette-shared "
                    f"{fmt(theirs)} ms ({ratio:.2f}x, target {LATENCY_TARGET}x): "
                    f"**{'met' if ratio <= LATENCY_TARGET else 'missed'}**"
                )
            queued = med.get(STREAMBOARD_QUEUE)
            if queued and queued["p50"] is not None and sb["p50"] is not None:
                verdicts.append(
                    f"- N={n:,} push mode: p50 {fmt(sb['p50'])} ms vs {fmt(queued['p50'])} ms "
                    f"with STREAMBOARD_PUSH=0 ({sb['p50'] / queued['p50']:.2f}x)"
                )
            two = med.get(STREAMBOARD_2W)
            if two and two["p99"] is not None and best["p99"] and n >= 5000:
                ratio = two["p99"] / best["p99"]
                verdicts.append(
                    f"- N={n:,} serve --workers 2 latency p99: {fmt(two['p99'])} ms vs "
                    f"single-process starlette-shared {fmt(best['p99'])} ms ({ratio:.2f}x, "
                    f"target {LATENCY_TARGET_2W_P99}x): "
                    f"**{'met' if ratio <= LATENCY_TARGET_2W_P99 else 'missed'}**"
                )
        ours_all = (STREAMBOARD, STREAMBOARD_QUEUE, STREAMBOARD_2W)
        peers = {k: v["kib"] for k, v in med.items() if k not in ours_all and v["kib"] is not None}
        if peers and sb["kib"] is not None:
            best_name = min(peers, key=lambda k: peers[k] or 0)
            mem_ok = sb["kib"] <= (peers[best_name] or 0)
            verdicts.append(
                f"- N={n:,} memory/connection: Streamboard {fmt(sb['kib'])} KiB vs best peer "
                f"{best_name} {fmt(peers[best_name])} KiB: **{'met' if mem_ok else 'missed'}**"
            )
        lost_ok = sb["lost"] == 0 and sb["dup"] == 0 and sb["conn"] == n
        verdicts.append(
            f"- N={n:,} delivery: {fmt(sb['conn'], 0)}/{n:,} connected, lost {fmt(sb['lost'], 0)}, "
            f"duplicates {fmt(sb['dup'], 0)}: **{'met' if lost_ok else 'missed'}**"
        )
    return lines, verdicts


def nd_table(recs: list[dict[str, Any]], client: str) -> tuple[list[str], dict[Any, Any]]:
    lines = []
    med: dict[tuple[str, int], dict[str, float | None]] = {}
    systems = list(dict.fromkeys(r["system"] for r in recs))
    for rows in sorted({r["rows_requested"] for r in recs}):
        for name in systems:
            runs = [r for r in recs if r["system"] == name and r["rows_requested"] == rows]
            if not runs:
                continue
            m = {
                key: median(runs, path)
                for key, path in {
                    "rps": "rows_per_s",
                    "got": "rows",
                    "s": "total_s",
                    "ttfb": "ttfb_ms",
                    "peak": "server.rss_peak_kib",
                    "delta": "server.rss_peak_delta_kib",
                    "cpu": "server.cpu_pct",
                }.items()
            }
            med[(name, rows)] = m
            complete = ",".join(
                "aborted at limit" if r.get("aborted") else ("yes" if r.get("ok") else "NO")
                for r in runs
            )
            errors = "; ".join(str(r["error"])[:80] for r in runs if r.get("error"))
            peak = None if m["peak"] is None else m["peak"] / MIB
            delta = None if m["delta"] is None else m["delta"] / MIB
            lines.append(
                f"| {'**' + name + '**' if name == STREAMBOARD else name} | {client} | {rows:,} | "
                f"{fmt(m['got'], 0)} | {fmt(m['s'], 2)} | {fmt(m['rps'], 0)} | {fmt(m['ttfb'])} | "
                f"{fmt(peak)} | {fmt(delta)} | {fmt(m['cpu'])} | {complete}"
                f"{' (' + errors + ')' if errors else ''} |"
            )
    return lines, med


def nd_verdicts(fast: dict[Any, Any], slow: dict[Any, Any]) -> list[str]:
    out = []
    largest = max((rows for _, rows in fast), default=None)
    for (name, rows), m in sorted(fast.items(), key=lambda kv: kv[0][1]):
        if name != STREAMBOARD:
            continue
        raw = fast.get((RAW, rows))
        if raw and raw["rps"] and m["rps"]:
            ratio = m["rps"] / raw["rps"]
            if rows == largest:
                verdict = "met" if ratio >= NDJSON_TARGET else "missed"
                target = f"target >= {NDJSON_TARGET}x **{verdict}**"
            else:
                target = f"no target below {largest:,} rows (start-up weighs more)"
            out.append(
                f"- {rows:,} rows, fast client: {fmt(m['rps'], 0)} rows/s = {ratio:.2f}x the raw "
                f"floor ({fmt(raw['rps'], 0)}): {target}"
            )
            if m["cpu"] and raw["cpu"]:
                # Server CPU per row, the floor's over ours: the ratio a free core would give.
                cpu_ratio = (raw["cpu"] / raw["rps"]) / (m["cpu"] / m["rps"])
                out.append(f"  - by server CPU per row: {cpu_ratio:.2f}x")
    for label, table in (("fast", fast), ("1 MiB/s", slow)):
        for (name, rows), m in sorted(table.items(), key=lambda kv: kv[0][1]):
            if name == STREAMBOARD and rows == max(r for _, r in table) and m["delta"] is not None:
                delta = m["delta"] / MIB
                out.append(
                    f"- {rows:,} rows, {label} client: peak server memory growth {delta:.1f} MiB: "
                    f"target < 16 MiB **{'met' if delta < 16 else 'missed'}**"
                )
    return out


def report(
    a: argparse.Namespace,
    out_dir: Path,
    info: dict[str, Any],
    vers: str,
    commands: list[str],
    background: dict[str, Any] | None,
    identical: bool | None,
) -> str:
    load_avg = ", ".join(f"{x:.2f}" for x in info["load_avg_at_start"])
    if "load_avg_at_end" in info:
        load_avg += " (at the end: " + ", ".join(f"{x:.2f}" for x in info["load_avg_at_end"]) + ")"
    md = [
        f"# Streamboard bench, {info['date_utc']}",
        "",
        f"Machine: {info['cpus']} vCPU ({info['cpu']}), {info['mem_gib']} GiB RAM, Linux "
        f"{info['kernel']}, load average at start {load_avg}. "
        f"Bench client Python {info['python']}; SQLite CLI {info['sqlite_cli']}.",
        "",
        "Project venv: " + vers.replace("\n", ", ") + ".",
        "",
        f"Source measured: {info.get('source', 'not recorded')}.",
        "",
        "Commands (from the project root):",
        "",
        "```sh",
        *commands,
        "```",
        "",
    ]
    sse = load(out_dir / "sse.jsonl")
    if sse:
        lines, verdicts = sse_tables(sse)
        md += [
            f"## SSE fan-out ({a.events} events, one every {a.interval}s; medians over "
            + ", ".join(f"{r} at N={n:,}" for n, r in a.sse_plan)
            + " round(s))",
            "",
            *lines,
            "",
            *verdicts,
            "",
        ]
    fast, slow = load(out_dir / "ndjson_fast.jsonl"), load(out_dir / "ndjson_slow.jsonl")
    if fast or slow:
        head = [
            "| system | client | rows asked | rows got | seconds | rows/s | TTFB ms | "
            "server peak MiB | peak growth MiB | server CPU % | complete |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        fl, fm = nd_table(fast, "fast")
        sl, sm = nd_table(slow, f"{SLOW_KIB_S} KiB/s, {a.slow_seconds:.0f}s limit")
        md += [
            f"## NDJSON export (fast client: medians over {a.nd_rounds} round(s))",
            "",
            "Raw floor writes byte-identical lines: "
            + {True: "yes (checked on 20,000 rows)", False: "**NO**", None: "not checked"}[
                identical
            ],
            "",
            *head,
            *fl,
            *sl,
            "",
            *nd_verdicts(fm, sm),
            "",
        ]
        if background:
            sb_fast = [
                m for (n, r), m in fm.items() if n == STREAMBOARD and r == background["rows"]
            ]
            streamed = sb_fast[0]["rps"] if sb_fast else None
            md += [
                "## Background export",
                "",
                f"{background['method']}: {background['rows']:,} rows in "
                f"{background['seconds']} s = **{fmt(background['rows_per_s'], 0)} rows/s** "
                f"(streamed over HTTP: {fmt(streamed, 0)} rows/s"
                + (
                    f", background/streamed {background['rows_per_s'] / streamed:.2f}x"
                    if streamed
                    else ""
                )
                + ").",
                "",
                "```json",
                json.dumps(background),
                "```",
                "",
            ]
    for name, title in EXTRA_PARTS.items():
        text = out_dir / f"{name}.txt"
        if text.exists():
            md += [f"## {title}", "", text.read_text().strip(), ""]
    return "\n".join(md)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--project-python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    p.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", "sse,ndjson,background,redis,cluster,search"),
        help="parts to run",
    )
    p.add_argument("--out-dir", help="default: var/bench/results/<UTC time>")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md from --out-dir")
    a = p.parse_args()
    # (clients, rounds): two rounds where a round is cheap, one at 5,000 clients.
    a.sse_plan = [(1000, 1)] if a.quick else [(1000, 2), (5000, 1)]
    a.events, a.interval = 50, 0.1
    a.sse_peers = os.environ.get("BENCH_SSE_PEERS", SSE_PEERS)
    a.sse_max_minutes = 8.0
    a.rows = "100000" if a.quick else "100000,1000000"
    a.slow_rows = "1000000" if a.quick else "100000,1000000"
    a.nd_rounds = 1 if a.quick else 2
    a.fast_seconds = 120.0
    a.slow_seconds = 10.0 if a.quick else 30.0
    a.nd_max_minutes = 6.0
    parts = set(a.only.split(","))
    if not (SHARED / "run_anchors.py").exists():
        raise SystemExit(f"make bench needs the shared bench tools in {SHARED}")
    py = str(Path(a.project_python).absolute())
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(a.out_dir) if a.out_dir else VAR / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path = out_dir / "machine.json"
    meta_path = out_dir / "meta.json"
    if a.report_only:
        meta = json.loads(meta_path.read_text())
        info = json.loads(info_path.read_text())
        text = report(
            a,
            out_dir,
            info,
            meta["versions"],
            meta["commands"],
            meta["background"],
            meta["identical"],
        )
        (out_dir / "report.md").write_text(text)
        print(text)
        return 0

    info = machine()
    info_path.write_text(json.dumps(info, indent=1))
    vers = versions(py)
    info["source"] = source_state()
    info_path.write_text(json.dumps(info, indent=1))
    log(f"results in {out_dir}")
    session = prepare_db(py, SEED_ROWS)
    work = Path(tempfile.mkdtemp(prefix="streamboard-bench-"))
    commands = [f"make bench{'  # BENCH_QUICK=1' if a.quick else ''}, which runs:"]
    commands.append(f"{shlex.quote(py)} manage.py seed_demo --rows {SEED_ROWS}  # cached")
    identical = background = None
    if "sse" in parts:
        commands += run_sse(a, py, session, out_dir / "sse.jsonl", work)
    if "ndjson" in parts:
        identical = check_identical(py, 20_000)
        log(f"raw floor byte-identical to the export on 20,000 rows: {identical}")
        commands += run_ndjson(
            a, py, session, out_dir / "ndjson_fast.jsonl", out_dir / "ndjson_slow.jsonl", work
        )
    if "background" in parts:
        rows = max(int(x) for x in a.rows.split(","))
        background = run_background(py, rows)
        log(f"background export: {background}")
    for part in EXTRA_PARTS:
        if part in parts:
            commands += run_extra(a, py, part, out_dir)
    info["load_avg_at_end"] = os.getloadavg()
    info_path.write_text(json.dumps(info, indent=1))
    meta = {
        "versions": vers,
        "commands": commands,
        "background": background,
        "identical": identical,
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    summary = subprocess.run(
        [
            sys.executable,
            str(SHARED / "run_anchors.py"),
            "summary",
            *[str(f) for f in sorted(out_dir.glob("*.jsonl"))],
            "--ndjson-baseline",
            RAW,
        ],
        capture_output=True,
        text=True,
    ).stdout
    (out_dir / "summary_all_metrics.md").write_text(summary)
    text = report(a, out_dir, info, vers, commands, background, identical)
    (out_dir / "report.md").write_text(text)
    print(text)
    log(f"written {out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
