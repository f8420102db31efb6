"""``manage.py demo_log``: write a realistic demo log for ``make run`` to tail.

A few lines per second (``--rate``) to ``STREAMBOARD_DEMO_LOG`` (or
``--path``): application lines at every level, request logs with statuses,
JSON lines, now and then an error with a traceback, and every
``--rotate-every`` lines a rotation (the file renamed to ``.1``, a new one
created), so the live page shows all of the tailer's cases. Each line is
flushed as it is written. ``--count`` stops after that many lines (tests).
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import conf

PATHS = ["/", "/logs/", "/logs/demo/", "/api/orders/", "/api/orders/{id}/", "/admin/", "/health/"]
LOGGERS = ["orders", "payments", "auth", "cache", "worker", "mail"]
MESSAGES = {
    "DEBUG": [
        "cache lookup key=order:{id} hit={hit}",
        "query took {ms} ms: SELECT ... FROM dashboard_order WHERE id = {id}",
    ],
    "INFO": [
        "order {id} paid ({amount} EUR)",
        "user {user} signed in",
        "export job {id} finished: {rows} rows",
        "sent receipt for order {id} to {user}@example.com",
    ],
    "WARNING": [
        "payment provider slow: {ms} ms",
        "retrying webhook for order {id} (attempt {attempt})",
        "disk usage at {pct}%",
    ],
    "ERROR": ["could not charge card for order {id}: declined", "mail server refused connection"],
    "CRITICAL": ["database connection pool exhausted"],
}
TRACEBACKS = [
    [
        "Traceback (most recent call last):",
        '  File "/srv/app/orders/views.py", line 42, in checkout',
        "    charge = provider.charge(order.total, token)",
        '  File "/srv/app/payments/provider.py", line 117, in charge',
        "    raise PaymentError(response.reason)",
        "payments.errors.PaymentError: card declined (code 51)",
    ],
    [
        "Traceback (most recent call last):",
        '  File "/srv/app/worker/tasks.py", line 88, in run',
        "    rows = export(job)",
        '  File "/srv/app/exports/core.py", line 23, in export',
        "    return writer.write(queryset)",
        "OSError: [Errno 28] No space left on device",
    ],
]


class Command(BaseCommand):
    help = "Write a realistic demo log (levels, requests, JSON, tracebacks, rotation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", type=Path, default=None, help="default: the demo log")
        parser.add_argument("--rate", type=float, default=3.0, help="lines per second")
        parser.add_argument("--rotate-every", type=int, default=2000, help="0: never rotate")
        parser.add_argument("--count", type=int, default=0, help="stop after N lines (0: never)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path | None = options["path"] or conf.demo_log()
        if path is None:
            raise CommandError("No demo log is configured (STREAMBOARD_DEMO_LOG); give --path.")
        rate: float = max(options["rate"], 0.01)
        rotate_every: int = options["rotate_every"]
        count: int = options["count"]
        rng = random.Random(options["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"demo_log: writing about {rate:g} lines/s to {path}")
        written = since_rotation = 0
        log = path.open("a", encoding="utf-8")
        try:
            while not count or written < count:
                lines = self.record(rng)
                for line in lines:
                    log.write(line + "\n")
                log.flush()
                written += 1
                since_rotation += 1
                if rotate_every and since_rotation >= rotate_every:
                    log.close()
                    os.replace(path, path.with_name(path.name + ".1"))
                    log = path.open("a", encoding="utf-8")
                    since_rotation = 0
                time.sleep(rng.expovariate(rate))
        except KeyboardInterrupt:
            pass
        finally:
            log.close()

    def record(self, rng: random.Random) -> list[str]:
        """One log record: usually one line, an error with its traceback now and then."""
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"
        values = {
            "id": rng.randint(1000, 99999),
            "hit": rng.choice(["true", "false"]),
            "ms": rng.randint(2, 2500),
            "amount": f"{rng.uniform(5, 500):.2f}",
            "user": rng.choice(["alice", "bob", "carol", "dave"]),
            "rows": rng.randint(10, 1_000_000),
            "attempt": rng.randint(2, 5),
            "pct": rng.randint(80, 99),
        }
        kind = rng.random()
        if kind < 0.35:
            status = rng.choices([200, 201, 302, 304, 404, 403, 500], [60, 5, 8, 10, 8, 3, 2])[0]
            level = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
            method = rng.choice(["GET", "GET", "GET", "POST"])
            url = rng.choice(PATHS).format(**values)
            size = rng.randint(200, 40000)
            return [
                f'{stamp} {level} [django.request] "{method} {url} HTTP/1.1" {status} {size} '
                f"{values['ms']}ms"
            ]
        if kind < 0.47:
            level = rng.choices(["debug", "info", "warning", "error"], [10, 60, 20, 10])[0]
            record = {
                "ts": now.isoformat(timespec="milliseconds"),
                "level": level,
                "logger": f"app.{rng.choice(LOGGERS)}",
                "event": rng.choice(["cache_refresh", "job_done", "rate_limited", "webhook"]),
                "duration_ms": values["ms"],
                "order": values["id"],
            }
            return [json.dumps(record)]
        if kind < 0.50:
            message = rng.choice(MESSAGES["ERROR"]).format(**values)
            return [f"{stamp} ERROR [app.{rng.choice(LOGGERS)}] {message}", *rng.choice(TRACEBACKS)]
        level = rng.choices(list(MESSAGES), [15, 60, 17, 6, 2])[0]
        message = rng.choice(MESSAGES[level]).format(**values)
        return [f"{stamp} {level} [app.{rng.choice(LOGGERS)}] {message}"]
