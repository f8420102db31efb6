#!/usr/bin/env python3
"""The raw floor of the orders export: Python's sqlite3 + orjson, no Django, no HTTP.

    python bench/raw_orders.py --db var/bench/streamboard.sqlite3 --rows 1000000 --out - > /dev/null
    python bench/raw_orders.py --db ... --rows 1000000 --listen 127.0.0.1:8004   # raw TCP, then EOF

The counterpart of ``../shared/bench/peers/raw_ndjson.py`` for Streamboard's
``dashboard_order`` table. Unlike that peer (which writes SQLite's text as is),
this writes **the same bytes** as ``GET /exports/dashboard.order.ndjson``: the
UUID with dashes, the amount as an exact two-decimal string, the boolean as
``true``/``false``, the JSON metadata re-encoded compactly, timestamps in ISO
8601 with ``+00:00``. ``bench/run.py`` checks that the two outputs are
byte-identical before it compares their speed, so the floor does the same work
minus Django (ORM converters, the async hop per chunk, HTTP framing).

Rows are read with one cursor and ``fetchmany`` in 2000-row chunks, and each
chunk is written at once, like the peer.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

CHUNK = 2000
FIELDS = (
    "id",
    "uuid",
    "reference",
    "customer",
    "status",
    "quantity",
    "amount",
    "note",
    "placed_on",
    "is_gift",
    "metadata",
    "created_at",
    "updated_at",
)
SQL = (
    "SELECT id, uuid, reference, customer_id, status, quantity, amount, note, placed_on, "
    "is_gift, metadata, created_at, updated_at FROM dashboard_order WHERE id <= ? ORDER BY id"
)


def iso(stamp: str) -> str:
    """SQLite's ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) as orjson writes an aware datetime."""
    return f"{stamp[:10]}T{stamp[11:]}+00:00"


def encode_chunk(rows: list[tuple[Any, ...]]) -> bytes:
    dumps, loads, opt = orjson.dumps, orjson.loads, orjson.OPT_APPEND_NEWLINE
    out = []
    for (
        rid,
        uid,
        ref,
        cust,
        status,
        qty,
        amount,
        note,
        placed,
        gift,
        meta,
        created,
        updated,
    ) in rows:
        out.append(
            dumps(
                {
                    "id": rid,
                    "uuid": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}",
                    "reference": ref,
                    "customer": cust,
                    "status": status,
                    "quantity": qty,
                    "amount": f"{amount:.2f}",
                    "note": note,
                    "placed_on": placed,
                    "is_gift": bool(gift),
                    "metadata": loads(meta),
                    "created_at": iso(created),
                    "updated_at": iso(updated),
                },
                option=opt,
            )
        )
    return b"".join(out)


def produce(db: str, rows: int, write: Callable[[bytes], Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cur = con.execute(SQL, (rows,))
    n = nbytes = 0
    first = None
    while True:
        batch = cur.fetchmany(CHUNK)
        if not batch:
            break
        buf = encode_chunk(batch)
        write(buf)
        if first is None:
            first = time.perf_counter()
        n += len(batch)
        nbytes += len(buf)
    con.close()
    dt = time.perf_counter() - t0
    return {
        "rows": n,
        "bytes": nbytes,
        "seconds": round(dt, 4),
        "rows_per_s": round(n / dt) if dt else None,
        "first_chunk_ms": round((first - t0) * 1000, 3) if first else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, help="the SQLite file seeded by manage.py seed_demo")
    p.add_argument("--rows", type=int, default=100_000, help="export orders with id <= ROWS")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", choices=["-"], help="write to stdout")
    g.add_argument("--listen", metavar="HOST:PORT", help="raw TCP: each connection gets the rows")
    p.add_argument("--max-conns", type=int, default=20)
    p.add_argument("--timeout", type=float, default=600.0, help="stop listening after this long")
    a = p.parse_args()

    if a.out:
        out = sys.stdout.buffer
        stats = produce(a.db, a.rows, out.write)
        out.flush()
        print(json.dumps({"tool": "raw_orders", "mode": "stdout", **stats}), file=sys.stderr)
        return 0

    host, _, port = a.listen.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        p.error("--listen must be a loopback address")
    srv = socket.create_server((host.strip("[]"), int(port)))
    srv.settimeout(a.timeout)
    deadline = time.monotonic() + a.timeout
    for _ in range(a.max_conns):
        if time.monotonic() >= deadline:
            break
        try:
            conn, _addr = srv.accept()
        except TimeoutError:
            break
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            try:
                stats = produce(a.db, a.rows, conn.sendall)
                line = json.dumps({"tool": "raw_orders", "mode": "tcp", **stats})
                print(line, file=sys.stderr, flush=True)
            except OSError as exc:  # the client went away: nothing to clean up but the socket
                print(f"raw_orders: connection ended: {exc}", file=sys.stderr)
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
