"""System checks for the export allow-list: bad configuration stops start-up, not a request.

* ``streams.E001``: a field that looks secret (password, token, key...).
* ``streams.E002``: a field the model does not have, or that is not a column.
* ``streams.E003``: a label that names no installed model.
* ``streams.E004``: a model without an integer primary key (keyset chunks and
  ``after=`` need one).
* ``streams.E005``: a malformed entry (not a list of field names, or empty).
* ``streams.E006``: ``ExportJob.Format`` (the model field's choices, frozen in
  a migration) and the format table (``streams.exports.formats``) disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.apps.config import AppConfig
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from streams import conf
from streams.exports.allow_list import is_secret_name
from streams.exports.formats import FORMATS
from streams.jobs.models import ExportJob

INTEGER_PKS = (models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField)


def check_model_fields(label: str, model: type[models.Model], fields: Sequence[str]) -> list[Error]:
    errors: list[Error] = []
    pk = model._meta.pk
    if not isinstance(pk, INTEGER_PKS):
        errors.append(
            Error(
                f"STREAMBOARD_EXPORTS[{label!r}]: {label} has no integer primary key.",
                hint="Exports page through rows by primary key; use an integer one.",
                id="streams.E004",
            )
        )
    for name in fields:
        if is_secret_name(name):
            errors.append(
                Error(
                    f"STREAMBOARD_EXPORTS[{label!r}] lists {name!r}, which looks secret.",
                    hint="Passwords, tokens, keys and hashes are never exported; remove it.",
                    id="streams.E001",
                )
            )
            continue
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
            errors.append(
                Error(
                    f"STREAMBOARD_EXPORTS[{label!r}] lists {name!r}, not a column of {label}.",
                    hint="List concrete fields by name (a foreign key exports its id).",
                    id="streams.E002",
                )
            )
    return errors


@register()
def check_export_allow_list(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for label, fields in conf.export_allow_list().items():
        if (
            isinstance(fields, str)
            or not isinstance(fields, list | tuple)
            or not fields
            or not all(isinstance(name, str) for name in fields)
        ):
            errors.append(
                Error(
                    f"STREAMBOARD_EXPORTS[{label!r}] must be a non-empty list of field names.",
                    id="streams.E005",
                )
            )
            continue
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                Error(
                    f"STREAMBOARD_EXPORTS names {label!r}, which is no installed model.",
                    hint="Use the lower-case 'app_label.model_name'.",
                    id="streams.E003",
                )
            )
            continue
        if label != model._meta.label_lower:
            errors.append(
                Error(
                    f"STREAMBOARD_EXPORTS names {label!r}; write it {model._meta.label_lower!r}.",
                    id="streams.E003",
                )
            )
            continue
        errors.extend(check_model_fields(label, model, fields))
    return errors


def job_format_errors(
    choices: Sequence[tuple[str, str]], table: Sequence[tuple[str, str]]
) -> list[CheckMessage]:
    """``streams.E006`` when the model's ``(value, label)`` choices are not the table's."""
    if list(choices) == list(table):
        return []
    return [
        Error(
            f"ExportJob.Format is {list(choices)}, but the export formats are {list(table)}.",
            hint="Change both (and add a migration for the model's choices).",
            id="streams.E006",
        )
    ]


@register()
def check_job_formats(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The job model's format choices are the table's formats, named as the table names them.

    The model keeps its own ``TextChoices`` (deriving them from the table
    would make ``jobs`` import ``exports``); this keeps the two from drifting.
    """
    return job_format_errors(
        [(str(value), str(label)) for value, label in ExportJob.Format.choices],
        [(spec.name, spec.label) for spec in FORMATS.values()],
    )
