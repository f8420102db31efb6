#!/bin/bash
# Interleaved NDJSON A/B in under two minutes: the raw floor and Streamboard trees, each a
# fresh server per run, the shared client (../shared/bench/ndjson_export.py) against each.
#
#   bench/ndjson_ab.sh ROWS ROUNDS SYSTEM...     SYSTEM: raw | a directory holding a tree
#   bench/ndjson_ab.sh 300000 3 raw /tmp/before .
#   CLIENT_ARGS=--throttle-kib-s=1024 TIMEOUT=20 bench/ndjson_ab.sh 1000000 1 /tmp/before .
#
# Uses the bench database of `make bench` (var/bench/streamboard.sqlite3, seeded once) and
# creates a staff session there. One line per run: rows/s, the server's peak RSS growth,
# and its CPU time per row (CPU % x seconds / rows), which a loaded machine disturbs less
# than rows/s. `.venv/bin/python` runs every tree and the client (orjson is all they need).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=$ROOT/.venv/bin/python
# ../shared/bench beside the repository (a worktree's is beside its main checkout).
SHARED=$ROOT/../shared/bench
[ -d "$SHARED" ] || SHARED=$(cd "$(git rev-parse --git-common-dir)/../.." && pwd)/shared/bench
export STREAMBOARD_VAR_DIR=$ROOT/var/bench DATABASE_URL=sqlite:///$ROOT/var/bench/streamboard.sqlite3
export LOG_LEVEL=WARNING PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
unset DEBUG STREAMBOARD_LOGS REDIS_URL
ROWS=$1 ROUNDS=$2
shift 2
SESSION=$($PY -c "import sys; sys.path.insert(0, 'bench'); import run; print(run.SESSION_CODE)" |
    $PY manage.py shell | sed -n 's/^SESSION //p')
PORT=${PORT:-18700}
for round in $(seq 1 "$ROUNDS"); do
    for system in "$@"; do
        PORT=$((PORT + 1))
        warm=()
        if [ "$system" = raw ]; then
            $PY bench/raw_orders.py --db var/bench/streamboard.sqlite3 --rows "$ROWS" \
                --listen "127.0.0.1:$PORT" >/dev/null &
            pid=$!
            url=tcp://127.0.0.1:$PORT
            # Listening (a probe connection would be sent the rows): ask the kernel.
            until ss -Hltn "sport = :$PORT" | grep -q .; do sleep 0.1; done
        else
            (cd "$system" && exec "$PY" manage.py serve --port "$PORT" >/dev/null 2>&1) &
            pid=$!
            until curl -s -o /dev/null "http://127.0.0.1:$PORT/admin/login/"; do sleep 0.1; done
            url="http://127.0.0.1:$PORT/exports/dashboard.order.ndjson?id__lte=$ROWS"
            warm=(--header "Cookie: sessionid=$SESSION"
                --prewarm-url "http://127.0.0.1:$PORT/exports/dashboard.order.ndjson?id__lte=10")
        fi
        # The client exits non-zero for a transfer cut at --timeout (the slow client's
        # runs); its line is still printed. CLIENT_ARGS is a list of flags.
        $PY "$SHARED/ndjson_export.py" "$url" --server-pid "$pid" --expect-rows "$ROWS" \
            --timeout "${TIMEOUT:-60}" --label "$system" "${warm[@]}" ${CLIENT_ARGS:-} 2>/dev/null |
            head -1 | $PY -c "
import json, sys
r = json.loads(sys.stdin.readline()); s = r['server']
seconds = r['rows'] / r['rows_per_s']
print(f\"round $round {sys.argv[1]}: {r['rows']} rows, {r['rows_per_s']} rows/s, \"
      f\"complete {r['complete']}, http chunks {r.get('http_chunks')}, \"
      f\"peak growth {s['rss_peak_delta_kib'] / 1024:.1f} MiB, CPU {s['cpu_pct']} %, \"
      f\"{s['cpu_pct'] / 100 * seconds * 1e6 / r['rows']:.2f} CPU-us/row, \"
      f\"load {open('/proc/loadavg').read().split()[0]}\")" "$system" || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
done
