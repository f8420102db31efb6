"""Validation of a job stream's query: client input, so a bad value is a 400 naming it."""

from __future__ import annotations

from typing import cast

from django import forms
from django.http import HttpRequest

from streams.jobs.encoding import FORMATS, Format


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
