"""Validation of a job stream's query: client input, so a bad value is a 400 naming it."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db import models
from django.http import HttpRequest

from streams.jobs.encoding import FORMATS, Format
from streams.jobs.models import ExportJob, Job, JobStatus


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


EXPORT_KIND = "export"


class JobFilterForm(forms.Form):
    """``/jobs/``'s filter: a kind and a status (both optional).

    Exports are the kind ``export`` (their own table, ``ExportJob``); every
    other kind is a ``Job``'s.
    """

    kind = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(choices=[("", "all"), *JobStatus.choices], required=False)

    def error_text(self) -> str:
        lines = [f"{name}: {error}" for name, errors in self.errors.items() for error in errors]
        return "\n".join(lines) + "\n"

    def keep(self, job: Any) -> bool:
        """Whether ``job`` passes the filter."""
        kind, status = self.cleaned_data.get("kind"), self.cleaned_data.get("status")
        return (not kind or job.kind == kind) and (not status or job.status == status)

    def shows_tracked(self) -> bool:
        return self.cleaned_data.get("kind") != EXPORT_KIND

    def shows_exports(self) -> bool:
        return self.cleaned_data.get("kind") in ("", None, EXPORT_KIND)

    def keep_export(self, job: Any) -> bool:
        status = self.cleaned_data.get("status")
        return not status or job.status == status

    def apply_exports(self, jobs: models.QuerySet[ExportJob]) -> models.QuerySet[ExportJob]:
        if not self.shows_exports():
            return jobs.none()
        if status := self.cleaned_data.get("status"):
            jobs = jobs.filter(status=status)
        return jobs

    def apply(self, jobs: models.QuerySet[Job]) -> models.QuerySet[Job]:
        if not self.shows_tracked():
            return jobs.none()
        if kind := self.cleaned_data.get("kind"):
            jobs = jobs.filter(kind=kind)
        if status := self.cleaned_data.get("status"):
            jobs = jobs.filter(status=status)
        return jobs


class TrackedJobStreamForm(JobStreamForm, JobFilterForm):
    """``/streams/jobs/``: the list's filter plus the stream's format."""
