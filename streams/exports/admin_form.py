"""The choice made on the admin's export confirmation page: a format and the fields, in order.

``ExportChoiceForm`` offers exactly what may leave the server: the formats of
``streams.exports.formats.FORMATS`` and the model's allow-listed fields
(``streams.exports.allow_list``), all checked by default, NDJSON first.

Deliberate choices:

* **A forged field is refused, not ignored.** The choices are the allow-list,
  so a field name the page never offered (a secret column, a typo, a field
  removed from the allow-list since the page was rendered) makes the form
  invalid; the action answers 400 with the page and its error, and stores no
  job. Ignoring it would hand the user a file without the column they asked
  for and no word why.
* **Nothing chosen is an error too** (400, "Choose at least one field."):
  an export of zero columns is never what was meant.
* **Order is the submitted order.** The page lists the fields in the
  allow-list's order (its script adds buttons to move them); a client posting
  ``fields=amount&fields=id`` gets ``amount`` first, and a page shown again
  lists the posted fields first, as they were. A field posted twice is
  refused, as ``fields=id,id`` is by the export query.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst

from streams.exports.allow_list import Exportable
from streams.exports.formats import EXPORT_FORMATS, FORMATS, ExportFormat


class ExportChoiceForm(forms.Form):
    """Format and fields of one admin export; ``data=None`` is the page's first showing."""

    format = forms.ChoiceField(
        choices=[(spec.name, spec.label) for spec in FORMATS.values()],
        widget=forms.RadioSelect,
    )

    def __init__(self, exportable: Exportable, data: Any = None) -> None:
        super().__init__(
            data, initial={"format": EXPORT_FORMATS[0], "fields": list(exportable.fields)}
        )
        self.exportable = exportable
        # Declared here, not on the class: a form's ``fields`` attribute is its field dict.
        self.fields["fields"] = forms.MultipleChoiceField(
            choices=[
                (name, capfirst(exportable.model_field(name).verbose_name))
                for name in shown_order(exportable.fields, data)
            ],
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": "Choose at least one field."},
        )

    def clean_fields(self) -> tuple[str, ...]:
        names: list[str] = self.cleaned_data["fields"]
        if len(set(names)) != len(names):
            raise ValidationError("A field is chosen twice.", code="duplicate")
        return tuple(names)

    @property
    def chosen_format(self) -> ExportFormat:
        """The chosen format; call after ``is_valid()`` returned True."""
        name: ExportFormat = self.cleaned_data["format"]
        return name

    @property
    def chosen_fields(self) -> tuple[str, ...]:
        """The chosen fields in the submitted order; call after ``is_valid()``."""
        names: tuple[str, ...] = self.cleaned_data["fields"]
        return names


def shown_order(allowed: tuple[str, ...], data: Any) -> list[str]:
    """The allow-list, with the fields posted (a page shown again) first in their order."""
    getlist = getattr(data, "getlist", None)
    if getlist is None:
        return list(allowed)
    posted = [name for name in dict.fromkeys(getlist("fields")) if name in allowed]
    return posted + [name for name in allowed if name not in posted]
