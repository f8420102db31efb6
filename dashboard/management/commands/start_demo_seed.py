"""``manage.py start_demo_seed --rows N``: seed the demo orders as a tracked background job.

What ``make run`` calls: it creates the ``demo.seed`` job for the demo admin
and enqueues it; the running ``db_worker`` seeds, and the job's bar shows on
the overview and on ``/jobs/``. It returns at once, and does nothing when
the orders are already there (``dashboard.tasks.start_seeding``). For a
seed in the foreground, with a terminal bar, use ``seed_demo``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from dashboard.demo_data import BATCH
from dashboard.tasks import start_seeding


class Command(BaseCommand):
    help = "Start seeding the demo orders up to --rows in the task worker (nothing if enough)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000, help="orders wanted in total")
        parser.add_argument("--batch-size", type=int, default=BATCH)
        parser.add_argument("--username", default="admin", help="whose job it is (its owner)")

    def handle(self, *args: Any, rows: int, batch_size: int, username: str, **options: Any) -> None:
        if rows < 0 or batch_size < 1:
            raise CommandError("--rows must be at least 0 and --batch-size at least 1.")
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r} (make run creates it: ensure_demo_admin).")
        job = start_seeding(rows, batch=batch_size, user=user)
        if job is None:
            self.stdout.write(f"start_demo_seed: {rows:,} orders or more already, nothing to do.")
            return
        url = reverse("job", args=[job.pk])
        self.stdout.write(f"start_demo_seed: job #{job.pk} seeds the demo orders ({url}).")
