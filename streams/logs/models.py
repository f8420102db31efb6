"""Who may see log lines unredacted: a permission with no table behind it.

Django's permissions belong to a model; log sources are configured, not
stored, so ``LogAccess`` is an unmanaged model without default permissions
(no table, no add/change/delete/view): it exists only to carry
``streams.view_unredacted_logs`` (``streams.logs.redaction.UNREDACTED_PERMISSION``),
which an admin grants to a user or a group like any other. Superusers have
it implicitly.
"""

from __future__ import annotations

from django.db import models


class LogAccess(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_unredacted_logs", "Can see log lines unredacted")]
        verbose_name = "log access"

    def __str__(self) -> str:
        return "log access"
