"""How the progress machinery sees one model of tracked job: a ``JobTable``.

The worker-side reporter, the channel-layer messages and the server-side
hubs work on any model whose rows have a ``status`` (the ``JobStatus``
vocabulary), a ``user_id``, a ``heartbeat_at`` and a ``version()``. Each such
model declares one ``JobTable``: its channel-layer group prefix, the fields a
progress message carries, and its stale-job reaper. The machinery names no
model of its own; ``ExportJob`` is one table among others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.db import models


class TrackedRow(Protocol):
    """What the hubs and encoders read from a job row, whatever its model."""

    pk: Any
    status: str
    user_id: Any
    heartbeat_at: datetime | None

    @property
    def is_active(self) -> bool: ...

    def version(self) -> str: ...


@dataclass(frozen=True)
class Templates:
    """The fragments a job page swaps: one job's bar, and the whole list."""

    job: str
    job_list: str


@dataclass(frozen=True)
class JobTable:
    """One model of tracked job, as the progress machinery and the pages need to know it."""

    model: type[models.Model]
    group: str  # channel-layer groups: <group>-job-<id>, <group>-user-<id>, <group>-jobs
    fields: tuple[str, ...]  # carried by a progress message (must include id, user_id, status)
    times: tuple[str, ...]  # datetime fields carried as ISO text
    reap: Callable[[], list[int]]  # fails running rows whose worker stopped beating
    templates: Templates  # on its own pages
    listed: Templates  # among every kind on /jobs/
    page_url_name: str  # a job's page: reverse(page_url_name, args=[pk])
    label_field: str  # what names a job in a notice
    kind: str | None = None  # a table of one kind names it; otherwise each row has .kind
    title: str = ""  # its section's heading on /jobs/

    @property
    def prefix(self) -> str:
        """Event names on /jobs/: ``<prefix>-<id>`` per job, ``<prefix>s`` for the list."""
        return self.kind or "job"

    @property
    def list_event(self) -> str:
        return f"{self.prefix}s"

    def rows(self) -> models.QuerySet[Any]:
        return self.model._default_manager.all()

    def visible_to(self, user: Any) -> models.QuerySet[Any]:
        """A user sees only their own jobs; a superuser sees all."""
        if getattr(user, "is_superuser", False):
            return self.rows()
        return self.rows().filter(user_id=getattr(user, "pk", None))

    def job_group(self, job_id: int) -> str:
        return f"{self.group}-job-{job_id}"

    def user_group(self, user_id: int) -> str:
        return f"{self.group}-user-{user_id}"

    @property
    def all_group(self) -> str:
        return f"{self.group}-jobs"

    def groups(self, row: TrackedRow) -> tuple[str, ...]:
        return (self.job_group(row.pk), self.user_group(row.user_id), self.all_group)

    def serialize(self, row: TrackedRow) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(row, name) for name in self.fields}
        for name in self.times:
            value = getattr(row, name)
            data[name] = value.isoformat() if value else None
        return data

    def deserialize(self, data: dict[str, Any]) -> Any:
        values = {name: data[name] for name in self.fields}
        for name in self.times:
            values[name] = datetime.fromisoformat(data[name]) if data.get(name) else None
        return self.model(**values)
