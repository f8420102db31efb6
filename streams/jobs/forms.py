"""Validation of a job stream's query: client input, so a bad value is a 400 naming it."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db import models
from django.http import HttpRequest

from streams.jobs.encoding import FORMATS, Format
from streams.jobs.models import Job, JobStatus


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
    """``/jobs/``'s filter: a kind and a status (both optional)."""

    kind = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(choices=[("", "all"), *JobStatus.choices], required=False)

    def error_text(self) -> str:
        lines = [f"{name}: {error}" for name, errors in self.errors.items() for error in errors]
        return "\n".join(lines) + "\n"

    def keep(self, job: Any) -> bool:
        """Whether ``job`` passes the filter."""
        kind, status = self.cleaned_data.get("kind"), self.cleaned_data.get("status")
        return (not kind or job.kind == kind) and (not status or job.status == status)

    def apply(self, jobs: models.QuerySet[Job]) -> models.QuerySet[Job]:
        if kind := self.cleaned_data.get("kind"):
            jobs = jobs.filter(kind=kind)
        if status := self.cleaned_data.get("status"):
            jobs = jobs.filter(status=status)
        return jobs


class TrackedJobStreamForm(JobStreamForm, JobFilterForm):
    """``/streams/jobs/``: the list's filter plus the stream's format."""
