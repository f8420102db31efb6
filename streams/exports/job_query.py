"""What a background export job exports: the query the admin action stored on the job.

``ExportJob.query`` is a JSON field; this is its one reader and writer, so the
admin action (which stores it) and the task (which replays it) cannot drift
apart. The stored JSON is unchanged from the informal dict it replaces, so
existing jobs read back as before:

* ``{"params": {...}, "pks": [...]}``: the rows ticked on one changelist page;
* ``{"params": {...}, "changelist": "<query string>"}``: "select all N" on a
  filtered, searched changelist (rebuilt by ``streams.exports.changelist``);
* ``{"params": {...}}`` or ``{}``: every row of the model.

``params`` are export query parameters (``fields``, filters, ``after``),
validated by ``ExportQueryForm`` when the job runs, as for the streamed view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from streams.exports.changelist import changelist_queryset


@dataclass(frozen=True, slots=True)
class JobQuery:
    """The stored rows selection of one job: ticked keys, a changelist, or everything."""

    params: Mapping[str, str] = field(default_factory=dict)
    pks: tuple[int, ...] | None = None
    changelist: str | None = None

    def __post_init__(self) -> None:
        if self.pks is not None and self.changelist is not None:
            raise ValueError("a job exports either ticked rows or a changelist, not both")

    @classmethod
    def selection(cls, pks: Iterable[int]) -> JobQuery:
        return cls(pks=tuple(pks))

    @classmethod
    def of_changelist(cls, params: str) -> JobQuery:
        return cls(changelist=params)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"params": dict(self.params)}
        if self.pks is not None:
            data["pks"] = list(self.pks)
        if self.changelist is not None:
            data["changelist"] = self.changelist
        return data

    @classmethod
    def from_json(cls, data: Any) -> JobQuery:
        """Read a stored query; ``ValueError`` names what is malformed."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(f"a job query is a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - {"params", "pks", "changelist"})
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
        return cls(
            params=dict(params),
            pks=tuple(pks) if pks is not None else None,
            changelist=changelist,
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
