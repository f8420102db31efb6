"""``manage.py prune_jobs [--days N]``: delete finished jobs (and files) past the retention.

Workers do this on a timer (``STREAMBOARD_JOB_PRUNE_SECONDS``); the command
is for a cron job, or to prune now with a different retention.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from streams.jobs.liveness import prune, reap_all


class Command(BaseCommand):
    help = "Delete finished tracked jobs older than STREAMBOARD_JOB_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=None, help="retention in days")

    def handle(self, *args: Any, days: float | None = None, **options: Any) -> None:
        reap_all()
        pruned = prune(retention_days=days)
        for group, count in pruned.items():
            self.stdout.write(f"{group}: {count} pruned")
