"""``manage.py seed_demo --rows N``: make sure the demo has at least N orders.

It tops up: with M orders already there it inserts N - M more, and with
M >= N it does nothing but one COUNT, so ``make run`` can call it on every
start. The rows and how they are written fast are ``dashboard.demo_data``'s;
this command only draws the progress bar.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.demo_data import BATCH, seed_orders
from dashboard.models import Order
from streams.management.progress import ProgressBar


class Command(BaseCommand):
    help = "Top the demo orders up to --rows (does nothing when there are enough)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000, help="orders wanted in total")
        parser.add_argument("--batch-size", type=int, default=BATCH)

    def handle(self, *args: Any, rows: int, batch_size: int, **options: Any) -> None:
        if rows < 0 or batch_size < 1:
            raise CommandError("--rows must be at least 0 and --batch-size at least 1.")
        bar: ProgressBar | None = None

        def on_progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = ProgressBar(total, self.stderr, label="seeding orders")
            bar.update(done - bar.n)

        # SIGTERM (run_demo stopping) unwinds like Ctrl-C, so a first seed
        # still rebuilds the indexes it set aside before the process ends.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, interrupt) if main else None
        try:
            inserted = seed_orders(rows, batch=batch_size, on_progress=on_progress)
        except KeyboardInterrupt:
            # Ctrl-C on ``make run`` reaches every process; committed batches stay.
            done = bar.n if bar is not None else 0
            raise CommandError(f"interrupted after {done:,} orders.", returncode=130) from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
        if bar is None:
            existing = Order.objects.count()
            self.stdout.write(f"seed_demo: {existing:,} orders already, nothing to do.")
            return
        bar.close()
        self.stdout.write(f"seed_demo: inserted {inserted:,} orders, {rows:,} in total.")


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
