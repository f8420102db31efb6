"""The admin changelist, rebuilt outside its request: "select all N" exports what the user saw.

The admin action stores only the changelist's filter and search parameters
(``changelist_params``: a few bytes, whatever the row count); the worker
rebuilds the same queryset for the job's user (``changelist_queryset``) by
asking the model's ``ModelAdmin`` for its changelist on a ``RequestFactory``
request carrying those parameters. Going through the ModelAdmin itself keeps
every filter, search field and ``get_queryset`` override the page applied;
nothing here re-implements them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.db import models
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import reverse

# Pagination, ordering and the popup's field: they change how rows are shown, not which.
NOT_KEPT = ("p", "o", "_to_field")


def changelist_params(query_dict: QueryDict) -> str:
    """The changelist parameters worth keeping (filters, search), as a query string."""
    return urlencode(
        [
            (key, value)
            for key, values in query_dict.lists()
            if key not in NOT_KEPT
            for value in values
        ]
    )


def changelist_queryset(
    user: Any, model: type[models.Model], params: str, site: admin.AdminSite | None = None
) -> models.QuerySet[Any]:
    """The rows of ``model``'s changelist that ``user`` sees with the stored ``params``.

    The caller checks that ``user`` may view the model; raises ``LookupError``
    when the model has no admin.
    """
    site = site or admin.site
    opts = model._meta
    try:
        model_admin = site.get_model_admin(model)
    except NotRegistered:
        raise LookupError(f"{opts.label_lower} has no admin changelist.") from None
    url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist")
    request = RequestFactory().get(url, QueryDict(params))
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    return changelist.get_queryset(request)
