"""Validation of an export's query: which fields, which rows, from where to resume.

The streamed view reads it from the query string and the ``export`` command
from its arguments; both go through ``ExportQueryForm``, so both accept and
refuse the same things, and produce the same query for the same input.

Parameters (all optional):

* ``fields=a,b``: a subset of the model's allow-listed fields, in the order
  wanted (default: every allowed field, in the configured order).
* ``name=value``, ``name__gte=value``, ``name__lte=value``: filters on
  allow-listed fields; values are parsed by the model field (ISO 8601 for
  dates and datetimes, ``true``/``false`` for booleans, a primary key for a
  foreign key). JSON fields cannot be filtered on.
* ``after=<pk>``: only rows with a greater primary key; rows come in primary
  key order, so a broken download resumes exactly after its last row.

Anything else, a repeated parameter or a value the field cannot parse is a
client error with a message naming the parameter (a 400, never a 500).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from streams.exports.allow_list import Exportable

LOOKUPS = ("exact", "gte", "lte")
# Fields that can be compared with __gte/__lte (not text that means a choice,
# not booleans, not UUIDs).
ORDERED = (
    models.IntegerField,
    models.DecimalField,
    models.FloatField,
    models.DateField,
    models.DateTimeField,
    models.TimeField,
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
)


@dataclass(frozen=True)
class ExportQuery:
    """A validated export query: apply it to the model's queryset."""

    fields: tuple[str, ...]
    filters: dict[str, Any] = field(default_factory=dict)
    after: int | None = None

    def apply(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.filter(**self.filters) if self.filters else queryset

    def as_params(self) -> dict[str, str]:
        """The query back as parameters (for a job to store and replay)."""
        params = {"fields": ",".join(self.fields)}
        for key, value in self.filters.items():
            name = key.removesuffix("__exact")
            params[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        if self.after is not None:
            params["after"] = str(self.after)
        return params


class ModelValueField(forms.Field):
    """A form field that parses its value with a model field's own ``to_python``."""

    def __init__(self, model_field: models.Field[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_field = model_field
        # A foreign key is filtered by the target's primary key.
        self.target = comparable_field(model_field)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        parsed = self.target.to_python(value)
        if isinstance(parsed, datetime.datetime) and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed

    def validate(self, value: Any) -> None:
        super().validate(value)
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValidationError("must be a finite number.", code="invalid")
        if value is not None:
            # Range and length limits of the column: a value the database would
            # reject (an integer overflowing 64 bits) is the client's error.
            self.target.run_validators(value)
        choices = self.model_field.flatchoices
        if value is not None and choices and value not in {key for key, _ in choices}:
            allowed = ", ".join(str(key) for key, _ in choices)
            raise ValidationError(f"{value!r} is not one of: {allowed}.", code="invalid_choice")


class ExportQueryForm(forms.Form):
    """Validates ``fields``, filters and ``after`` against one exportable model."""

    after = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def __init__(self, exportable: Exportable, data: Mapping[str, Any]) -> None:
        self.exportable = exportable
        flat, repeated = flatten(data)
        super().__init__(flat)
        self.repeated = repeated
        self.fields["fields"] = forms.CharField(required=False, strip=True)
        for name in exportable.fields:
            model_field = exportable.model_field(name)
            if isinstance(model_field, models.JSONField):
                continue
            self.fields[name] = ModelValueField(model_field, required=False)
            if isinstance(comparable_field(model_field), ORDERED):
                self.fields[f"{name}__gte"] = ModelValueField(model_field, required=False)
                self.fields[f"{name}__lte"] = ModelValueField(model_field, required=False)

    def clean_fields_param(self) -> tuple[str, ...]:
        raw = self.cleaned_data.get("fields") or ""
        if "fields" not in self.data:
            return self.exportable.fields
        names = [name.strip() for name in raw.split(",")]
        if not raw or any(not name for name in names):
            raise ValidationError("give a comma-separated list of field names.")
        unknown = [name for name in names if name not in self.exportable.fields]
        if unknown:
            raise ValidationError(
                f"{', '.join(unknown)} cannot be exported; choose from: "
                f"{', '.join(self.exportable.fields)}."
            )
        if len(set(names)) != len(names):
            raise ValidationError("a field is listed twice.")
        return tuple(names)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.repeated:
            self.add_error(None, f"{name}: given more than once.")
        unknown = sorted(set(self.data) - set(self.fields))
        if unknown:
            filterable = ", ".join(n for n in self.fields if n not in ("fields", "after"))
            self.add_error(
                None,
                f"unknown parameter {', '.join(unknown)}; filters: {filterable}; "
                "also fields=a,b and after=<pk>.",
            )
        if "fields" in self.fields and "fields" not in self.errors:
            try:
                cleaned["fields"] = self.clean_fields_param()
            except ValidationError as error:
                self.add_error("fields", error)
        for name in self.fields:
            if name in ("fields", "after") or name not in self.data:
                continue
            if cleaned.get(name) is None and name not in self.errors:
                self.add_error(name, "needs a value.")
        return cleaned

    def export_query(self) -> ExportQuery:
        """The validated query; call after ``is_valid()`` returned True."""
        if not self.is_valid():
            raise ValueError("the export query is not valid")
        filters = {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in ("fields", "after") and name in self.data and value is not None
        }
        return ExportQuery(
            fields=self.cleaned_data["fields"], filters=filters, after=self.cleaned_data["after"]
        )

    def error_text(self) -> str:
        """The errors as plain text, one per line: what a 400 or the CLI shows."""
        lines: list[str] = []
        for name, errors in self.errors.items():
            prefix = "" if name == "__all__" else f"{name}: "
            lines.extend(f"{prefix}{message}" for message in errors)
        return "\n".join(lines) + "\n"


def comparable_field(model_field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """The field whose values a filter compares: a foreign key's target primary key."""
    if isinstance(model_field, models.ForeignKey):
        target = model_field.target_field
        assert isinstance(target, models.Field)
        return target
    return model_field


def flatten(data: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A query dict's (or a dict of lists') single values, and the names given more than once."""
    getlist = getattr(data, "getlist", None)
    flat: dict[str, str] = {}
    repeated: list[str] = []
    for name in data:
        if getlist is not None:
            values: Sequence[Any] = getlist(name)
        else:
            raw = data[name]
            values = raw if isinstance(raw, list | tuple) else [raw]
        if len(values) > 1:
            repeated.append(name)
        flat[name] = values[-1] if values else ""
    return flat, repeated


def parse_assignments(assignments: Iterable[str]) -> dict[str, list[str]]:
    """``["status=paid", "amount__gte=10"]`` (command-line filters) as a query dict."""
    data: dict[str, list[str]] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise ValueError(f"{assignment!r} is not a name=value filter.")
        data.setdefault(name, []).append(value)
    return data
