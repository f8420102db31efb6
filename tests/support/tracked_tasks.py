"""A tracked task that is not an export, for the progress API's tests (run by real workers)."""

from __future__ import annotations

import time

from django.tasks import task

from streams.jobs.tracking import Progress, tracked


@task()
@tracked(kind="test.widgets", unit="widgets")
def count_widgets(progress: Progress, total: int, delay: float, fail_at: int = -1) -> str:
    """Count ``total`` widgets, ``delay`` seconds each (so a test can watch the bar move)."""
    progress.total = total
    progress.step("counting")
    for index in range(total):
        if index == fail_at:
            raise RuntimeError(f"widget {index} is broken")
        if index == total // 2:
            progress.step("polishing")
        if delay:
            time.sleep(delay)  # the work being simulated, not a synchronisation
        progress.advance()
    progress.result(url="/admin/", summary=f"{total} widgets counted")
    return "counted"
