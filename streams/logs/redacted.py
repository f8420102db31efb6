"""Lines as a redacted client sees them: each shared batch redacted once, then shared.

``streams.logs.redaction`` says what a rule hides in a text; this module
applies it to the live machinery's values. Choices:

* **A batch is redacted once** per redactor: its redacted twin is cached
  beside it (weakly, so it goes with the batch) and every redacted client
  gets the same twin, whose fragments and JSON are then encoded once too
  (the fan-out's "encode once" holds with redaction on).
* **A batch with nothing to hide is its own twin**: the unredacted and the
  redacted clients share one encoding.
* A JSON line's pretty-printed copy is redacted as well as its text.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from streams.http.access import close_connections, permissions_loaded
from streams.logs.fanout import LogBatch
from streams.logs.lines import LogLine
from streams.logs.redaction import Redactor, redactor, redactor_for

# A batch's redacted twin per redactor; ``None`` when the batch is its own twin
# (the value must not hold its own key, or the batch would never be freed).
_twins: weakref.WeakKeyDictionary[LogBatch, dict[int, LogBatch | None]] = (
    weakref.WeakKeyDictionary()
)


def redacted_line(line: LogLine, redactor: Redactor) -> LogLine:
    """``line`` with every covered value replaced; the same object if there is none."""
    text = redactor.redact(line.text)
    pretty = redactor.redact(line.json) if line.json is not None else None
    if text is line.text and pretty is line.json:
        return line
    return replace(line, text=text, json=pretty)


def redacted_batch(batch: LogBatch, redactor: Redactor) -> LogBatch:
    """``batch`` redacted (cached per batch and redactor; ``batch`` itself if nothing changed)."""
    twins = _twins.get(batch)
    if twins is None:
        twins = _twins[batch] = {}
    key = id(redactor)
    if key not in twins:
        lines = tuple(redacted_line(line, redactor) for line in batch.lines)
        changed = any(new is not old for new, old in zip(lines, batch.lines, strict=True))
        twins[key] = LogBatch(lines, batch.cursor, batch.notice) if changed else None
    twin = twins[key]
    return batch if twin is None else twin


def _redacting() -> bool:
    return redactor().active


async def client_redactor(request: HttpRequest) -> Redactor | None:
    """The redactor for the request's user (``None``: lines as written), decided before a stream.

    A stream's user arrives with its permissions loaded (``stream_staff_required``),
    so the check reads no database. Elsewhere (the download page) checking may
    read it: in a shared executor thread whose connection is then closed, not
    in the request's thread, which lives as long as the response.
    """
    if not _redacting():
        return None
    user = await request.auser()
    if permissions_loaded(user):
        return redactor_for(user)
    found: Redactor | None = await sync_to_async(_redactor_of, thread_sensitive=False)(user)
    return found


def _redactor_of(user: object) -> Redactor | None:
    found = redactor_for(user)
    close_connections()
    return found
