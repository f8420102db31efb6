"""The export allow-list: which models may be exported, and which of their fields.

``STREAMBOARD_EXPORTS`` maps a model label to the fields that may leave the
server. A model that is not listed is not exportable at all
(``get_exportable`` raises ``LookupError``, which views turn into a 404); a
field that looks secret (password, token, key...) is refused here and by the
system check ``streams.E001`` (``streams.exports.checks``), so a careless
entry stops start-up rather than leaking a column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from streams import conf
from streams.exports.formats import ExportFormatSpec

# A field whose name contains one of these words is never exportable.
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|pwd|passphrase|token|secret|key|apikey|hash|salt|otp|"
    r"credentials?|private)s?($|_)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


@dataclass(frozen=True, slots=True)
class Exportable:
    """A model configured for export, with the fields that may leave the server."""

    model: type[models.Model]
    label: str
    fields: tuple[str, ...]

    def model_field(self, name: str) -> models.Field[Any, Any]:
        field = self.model._meta.get_field(name)
        assert isinstance(field, models.Field)
        return field

    def filename(self, fmt: ExportFormatSpec) -> str:
        return f"{self.label}.{fmt.extension}"


def exportable_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The concrete model field ``name``, or ``ImproperlyConfigured`` saying why not."""
    if is_secret_name(name):
        raise ImproperlyConfigured(
            f"{model._meta.label_lower}.{name} looks secret; not exportable."
        )
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(f"{model._meta.label_lower} has no field {name!r}.") from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise ImproperlyConfigured(
            f"{model._meta.label_lower}.{name} is not a concrete column; only those export."
        )
    return field


def get_exportable(label: str) -> Exportable:
    """The exportable model ``label`` ("app_label.model_name").

    Raises ``LookupError`` when no such model exists or it is not configured
    for export, and ``ImproperlyConfigured`` for a broken configuration.
    """
    label = label.lower()
    allow_list = conf.export_allow_list()
    if label not in allow_list:
        raise LookupError(f"{label} is not configured for export.")
    model = apps.get_model(label)
    fields = tuple(allow_list[label])
    for name in fields:
        exportable_field(model, name)
    return Exportable(model=model, label=label, fields=fields)


def exportables() -> list[Exportable]:
    """Every model configured for export (installed ones only)."""
    found = []
    for label in conf.export_allow_list():
        try:
            found.append(get_exportable(label))
        except LookupError:
            continue
    return found
