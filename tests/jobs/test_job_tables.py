"""The job-table vocabulary: channel-layer groups and the message round trip; the stream form."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from streams.jobs.forms import JobStreamForm
from streams.jobs.models import EXPORT_JOBS, ExportJob


@pytest.mark.django_db
def test_a_progress_message_round_trips_a_jobs_state(superuser: User) -> None:
    job = ExportJob.objects.create(
        user=superuser, model_label="dashboard.order", rows_done=5, started_at=timezone.now()
    )
    copy = EXPORT_JOBS.deserialize(EXPORT_JOBS.serialize(job))
    assert copy.version() == job.version()
    assert copy.started_at == job.started_at
    assert EXPORT_JOBS.groups(job) == (
        f"export-job-{job.pk}",
        f"export-user-{superuser.pk}",
        "export-jobs",
    )


@pytest.mark.parametrize(("value", "fmt"), [("", "html"), ("html", "html"), ("json", "json")])
def test_the_stream_form_defaults_to_html(value: str, fmt: str) -> None:
    form = JobStreamForm({"format": value})
    assert form.is_valid()
    assert form.fmt == fmt


def test_a_bad_format_names_the_parameter() -> None:
    form = JobStreamForm({"format": "xml"})
    assert not form.is_valid()
    assert form.error_text() == "format: must be html or json\n"
