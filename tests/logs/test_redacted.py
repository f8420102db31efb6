"""Redacted batches: one twin per batch and redactor, shared, and freed with the batch."""

from __future__ import annotations

import gc
import weakref

from streams.logs.fanout import LogBatch
from streams.logs.files.cursor import Cursor, parse_texts
from streams.logs.redacted import redacted_batch
from streams.logs.redaction import build_redactor

REDACTOR = build_redactor(["email"])


def batch(*texts: str) -> LogBatch:
    return LogBatch(tuple(parse_texts(texts)), Cursor(1, 99))


def test_a_batch_with_a_secret_gets_one_shared_redacted_twin():
    original = batch("INFO mail ada@example.com", "INFO nothing here")
    twin = redacted_batch(original, REDACTOR)
    assert [line.text for line in twin.lines] == ["INFO mail [REDACTED:email]", "INFO nothing here"]
    assert twin.lines[1] is original.lines[1]
    assert twin.cursor == original.cursor
    assert redacted_batch(original, REDACTOR) is twin  # encoded once for every client


def test_a_batch_without_a_secret_is_its_own_twin():
    original = batch("INFO nothing here")
    assert redacted_batch(original, REDACTOR) is original


def test_batches_are_freed_whether_or_not_they_were_redacted():
    clean, secret = batch("INFO nothing"), batch("INFO ada@example.com")
    for each in (clean, secret):
        redacted_batch(each, REDACTOR)
    refs = [weakref.ref(clean), weakref.ref(secret)]
    del clean, secret, each
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
