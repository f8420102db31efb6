"""The streams fragments are partials of one template, rendered by name."""

from __future__ import annotations

import datetime

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from streams.jobs.models import ExportJob

FRAGMENTS = "streams/fragments.html"


def test_the_fragments_template_itself_renders_nothing() -> None:
    assert render_to_string(FRAGMENTS).strip() == ""


@pytest.mark.parametrize(
    ("name", "context", "expected"),
    [
        ("log_notice", {"notice": "rotated <x>"}, "rotated &lt;x&gt;"),
        ("log_skipped", {"count": 1}, ">1 line skipped<"),
        ("log_skipped", {"count": 3}, ">3 lines skipped<"),
        ("log_lines", {"entries": []}, ""),
        ("job_list", {"jobs": []}, '<p class="empty">No exports yet.</p>'),
    ],
)
def test_each_partial_renders_by_name(name: str, context: dict[str, object], expected: str) -> None:
    assert expected in render_to_string(f"{FRAGMENTS}#{name}", context)


def running_job(**fields: object) -> ExportJob:
    now = timezone.now()
    defaults: dict[str, object] = {
        "pk": 7,
        "model_label": "dashboard.order",
        "status": ExportJob.Status.RUNNING,
        "started_at": now - datetime.timedelta(seconds=4),
        "finished_at": now,  # freezes the rate: 4 s
        "user_id": 1,
    }
    return ExportJob(**{**defaults, **fields})


def test_row_counts_and_rates_are_grouped_by_thousands() -> None:
    job = running_job(rows_done=1_234_568, rows_total=9_876_543)
    html = render_to_string(f"{FRAGMENTS}#job", {"job": job})
    assert "1,234,568 / 9,876,543 rows · 308,642 rows/s · ETA 28 s" in html


def test_an_unknown_total_shows_only_the_rows_done() -> None:
    html = render_to_string(f"{FRAGMENTS}#job", {"job": running_job(rows_done=12_345)})
    assert "· 12,345 rows · 3,086 rows/s</div>" in html


def test_a_cancelled_job_says_how_far_it_got() -> None:
    job = running_job(status=ExportJob.Status.CANCELLED, rows_done=1500, rows_total=3000)
    html = render_to_string(f"{FRAGMENTS}#job", {"job": job})
    assert "Cancelled after 1,500 rows; nothing to download." in html


def test_the_job_list_wraps_each_job_in_its_swap_target() -> None:
    html = render_to_string(f"{FRAGMENTS}#job_list", {"jobs": [running_job(rows_done=1)]})
    assert html.startswith('<div class="export-job" id="job-7" sse-swap="job-7">')
    assert render_to_string(f"{FRAGMENTS}#job", {"job": running_job(rows_done=1)}) in html
