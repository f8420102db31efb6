"""Validation of a job stream's query: client input, so a bad value is a 400 naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.db import models
from django.http import HttpRequest

from streams.jobs.encoding import FORMATS, Format
from streams.jobs.models import TABLES, JobStatus
from streams.jobs.tables import JobTable


class JobStreamForm(forms.Form):
    format = forms.ChoiceField(
        choices=[(f, f) for f in FORMATS],
        required=False,
        error_messages={"invalid_choice": "must be html or json"},
    )

    @classmethod
    def from_request(cls, request: HttpRequest) -> JobStreamForm:
        return cls(request.GET)

    def error_text(self) -> str:
        lines = [f"{name}: {error}" for name, errors in self.errors.items() for error in errors]
        return "\n".join(lines) + "\n"

    @property
    def fmt(self) -> Format:
        return cast(Format, self.cleaned_data.get("format") or "html")


class JobFilterForm(forms.Form):
    """``/jobs/``'s filter: a kind and a status (both optional).

    A table of one kind (exports: ``export``) is shown when no kind or its
    kind is asked for; a table whose rows name their kind (``Job``) is
    filtered by it.
    """

    kind = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(choices=[("", "all"), *JobStatus.choices], required=False)

    def error_text(self) -> str:
        lines = [f"{name}: {error}" for name, errors in self.errors.items() for error in errors]
        return "\n".join(lines) + "\n"

    def shows(self, table: JobTable) -> bool:
        kind = self.cleaned_data.get("kind")
        if table.kind is not None:
            return not kind or kind == table.kind
        return kind not in {other.kind for other in TABLES if other.kind is not None}

    def keeper(self, table: JobTable) -> Callable[[Any], bool]:
        """Whether a job of ``table`` passes the filter (for a stream)."""
        kind, status = self.cleaned_data.get("kind"), self.cleaned_data.get("status")
        by_kind = bool(kind) and table.kind is None

        def keep(job: Any) -> bool:
            return (not by_kind or job.kind == kind) and (not status or job.status == status)

        return keep

    def apply(self, table: JobTable, jobs: models.QuerySet[Any]) -> models.QuerySet[Any]:
        if not self.shows(table):
            return jobs.none()
        if (kind := self.cleaned_data.get("kind")) and table.kind is None:
            jobs = jobs.filter(kind=kind)
        if status := self.cleaned_data.get("status"):
            jobs = jobs.filter(status=status)
        return jobs


class TrackedJobStreamForm(JobStreamForm, JobFilterForm):
    """``/streams/jobs/``: the list's filter plus the stream's format."""
