"""What a background export job exports: the query the admin action stored on the job.

``ExportJob.query`` is a JSON field; this is its one reader and writer, so the
admin action (which stores it) and the task (which replays it) cannot drift
apart. The stored JSON is unchanged from the informal dict it replaces, so
existing jobs read back as before:

* ``{"params": {...}, "pks": [...]}``: the rows ticked on one changelist page;
* ``{"params": {...}, "changelist": "<query string>"}``: "select all N" on a
  filtered, searched changelist (rebuilt by ``streams.exports.changelist``);
* ``{"params": {...}}`` or ``{}``: every row of the model.

Any of them may also carry ``"fields": [...]``, the columns chosen on the
admin's confirmation page, in the order wanted; without it (every job stored
before the page existed) the job exports every allow-listed field.

``params`` are export query parameters (``fields``, filters, ``after``),
validated by ``ExportQueryForm`` when the job runs, as for the streamed view;
``export_params`` merges the chosen fields into them, so the worker checks
them against the allow-list of the day it runs, not of the day they were
chosen (a field removed meanwhile fails the job instead of leaving).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import models

from streams.exports.changelist import changelist_queryset


@dataclass(frozen=True, slots=True)
class JobQuery:
    """The stored selection of one job: ticked keys, a changelist, or everything; and which
    fields (``None``: every allow-listed one)."""

    params: Mapping[str, str] = field(default_factory=dict)
    pks: tuple[int, ...] | None = None
    changelist: str | None = None
    fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.pks is not None and self.changelist is not None:
            raise ValueError("a job exports either ticked rows or a changelist, not both")
        if self.fields is not None:
            if not self.fields:
                raise ValueError("a job exports at least one field")
            if "fields" in self.params:
                raise ValueError("a job chooses its fields either in params or as fields")

    @classmethod
    def selection(cls, pks: Iterable[int]) -> JobQuery:
        return cls(pks=tuple(pks))

    @classmethod
    def of_changelist(cls, params: str) -> JobQuery:
        return cls(changelist=params)

    def with_fields(self, fields: Iterable[str]) -> JobQuery:
        """The same rows, exporting only ``fields``, in that order."""
        return replace(self, fields=tuple(fields))

    def export_params(self) -> dict[str, str]:
        """The export query parameters the worker validates: ``params`` and the chosen fields."""
        params = dict(self.params)
        if self.fields is not None:
            params["fields"] = ",".join(self.fields)
        return params

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"params": dict(self.params)}
        if self.pks is not None:
            data["pks"] = list(self.pks)
        if self.changelist is not None:
            data["changelist"] = self.changelist
        if self.fields is not None:
            data["fields"] = list(self.fields)
        return data

    @classmethod
    def from_json(cls, data: Any) -> JobQuery:
        """Read a stored query; ``ValueError`` names what is malformed."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(f"a job query is a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - {"params", "pks", "changelist", "fields"})
        if unknown:
            raise ValueError(f"unknown job query keys: {', '.join(unknown)}")
        params = data.get("params") or {}
        if not isinstance(params, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in params.items()
        ):
            raise ValueError("job query params must map names to strings")
        pks = data.get("pks")
        if pks is not None and (
            not isinstance(pks, list)
            or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in pks)
        ):
            raise ValueError("job query pks must be a list of integers")
        changelist = data.get("changelist")
        if changelist is not None and not isinstance(changelist, str):
            raise ValueError("job query changelist must be a query string")
        fields = data.get("fields")
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(name, str) for name in fields)
        ):
            raise ValueError("job query fields must be a list of field names")
        return cls(
            params=dict(params),
            pks=tuple(pks) if pks is not None else None,
            changelist=changelist,
            fields=tuple(fields) if fields is not None else None,
        )

    def rows(self, user: Any, model: type[models.Model]) -> models.QuerySet[Any]:
        """The rows selected, before the export params' own filters (the caller checked
        that ``user`` may view ``model``)."""
        if self.changelist is not None:
            return changelist_queryset(user, model, self.changelist)
        queryset = model._default_manager.all()
        if self.pks is not None:
            queryset = queryset.filter(pk__in=self.pks)
        return queryset
