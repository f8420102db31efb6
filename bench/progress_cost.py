#!/usr/bin/env python3
"""What a ``Progress`` call costs a task's tight loop when it does not save.

    .venv/bin/python bench/progress_cost.py [--calls 2000000]

``advance()`` and ``step()`` (same name) are timed against an empty loop of
the same length; the difference per call is what the API adds. The job is an
unsaved row and the save interval is an hour, so no call reaches the
database: exactly the calls that do not publish (one in every
``STREAMBOARD_EXPORT_PROGRESS_SECONDS`` does, a few milliseconds each).
Not a test: run it by hand, it prints nanoseconds per call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ["STREAMBOARD_EXPORT_PROGRESS_SECONDS"] = "3600"

import django

django.setup()

from streams.jobs.models import Job  # noqa: E402
from streams.jobs.tracking import Progress  # noqa: E402


def best_of(repeat: int, run: Callable[[], None]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    calls = range(args.calls)
    progress = Progress(Job(pk=1, kind="bench", task_path="bench"))
    progress.step("looping")

    def empty() -> None:
        for _ in calls:
            pass

    def advance() -> None:
        for _ in calls:
            progress.advance()

    def step() -> None:
        for _ in calls:
            progress.step("looping")

    base = best_of(args.repeat, empty)
    print(f"python {sys.version.split()[0]}, {args.calls:,} calls, best of {args.repeat}")
    for name, run in (("advance()", advance), ("step(same)", step)):
        per_call = (best_of(args.repeat, run) - base) / args.calls * 1e9
        print(f"{name:12} {per_call:6.0f} ns per call (loop overhead subtracted)")


if __name__ == "__main__":
    main()
