"""The admin export action's two POSTs, for tests that start export jobs through the admin.

The action answers its first POST (from the changelist) with the confirmation
page; ``confirm_export`` is what that page posts back on "Yes, export", with
the page's defaults unless told otherwise: NDJSON and every allow-listed field.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.exports.allow_list import get_exportable


def confirm_export(
    fmt: str = "ndjson", fields: Sequence[str] | None = None, model: str = "dashboard.order"
) -> dict[str, str | list[str]]:
    """The confirmation page's own inputs (add them to the action's POST data)."""
    chosen = list(get_exportable(model).fields if fields is None else fields)
    return {"post": "yes", "format": fmt, "fields": chosen}
