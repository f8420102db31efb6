"""``manage.py export <app_label>.<model_name>``: the streamed export, to a file or stdout.

Same allow-list, same query form and same producer as
``GET /exports/<label>.<format>``, so for the same query the bytes are
identical::

    manage.py export dashboard.order --output orders.ndjson status=paid amount__gte=100
    manage.py export dashboard.order --format csv --fields id,amount after=5000 > tail.csv

A file is written as ``FILE.part`` and renamed when complete, so a failed or
interrupted export never leaves something that looks finished. Progress goes
to stderr.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams.exports.allow_list import get_exportable
from streams.exports.formats import EXPORT_FORMATS, ExportFormat, format_for_suffix
from streams.exports.producer import ExportChunk, count_rows, iter_export
from streams.exports.query import ExportQueryForm, parse_assignments
from streams.management.progress import ProgressBar


class Command(BaseCommand):
    help = "Export an allow-listed model as NDJSON or CSV (the streamed export, from the terminal)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("label", help="app_label.model_name, e.g. dashboard.order")
        parser.add_argument(
            "filters",
            nargs="*",
            metavar="field=value",
            help="filters (field=, field__gte=, field__lte=) and after=<pk>",
        )
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")
        parser.add_argument(
            "--format",
            choices=EXPORT_FORMATS,
            help="ndjson or csv (default: from the --output suffix, else ndjson)",
        )
        parser.add_argument("--fields", help="comma-separated subset of the allowed fields")

    def handle(
        self,
        *args: Any,
        label: str,
        filters: list[str],
        output: str | None,
        format: str | None,
        fields: str | None,
        **options: Any,
    ) -> None:
        try:
            exportable = get_exportable(label)
        except LookupError as error:
            raise CommandError(str(error)) from None
        fmt = export_format(format, output)
        try:
            data = parse_assignments(filters)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if "fields" in data:
            raise CommandError("use --fields a,b to choose fields.")
        if fields is not None:
            data["fields"] = [fields]
        form = ExportQueryForm(exportable, data)
        if not form.is_valid():
            raise CommandError("invalid export query:\n" + form.error_text().rstrip())
        query = form.export_query()
        queryset = query.apply(exportable.model._default_manager.all())
        bar = ProgressBar(count_rows(queryset, query.after), self.stderr, label=exportable.label)
        chunks = iter_export(queryset, query.fields, fmt, after=query.after)
        if output is None:
            stream = cast(BinaryIO | None, getattr(self.stdout, "buffer", None))
            if stream is None:
                raise CommandError("stdout takes no bytes here; use --output FILE.")
            write_chunks(chunks, stream, bar)
            stream.flush()
        elif not is_regular_target(Path(output)):
            # A device or a pipe (/dev/null, a FIFO): written in place, never
            # renamed over (as root, a rename would replace /dev/null itself).
            with open(output, "wb") as file:
                write_chunks(chunks, file, bar)
        else:
            target = Path(output)
            partial = target.with_name(target.name + ".part")
            try:
                with partial.open("wb") as file:
                    write_chunks(chunks, file, bar)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        bar.close()


def write_chunks(chunks: Iterable[ExportChunk], file: BinaryIO, bar: ProgressBar) -> None:
    for chunk in chunks:
        file.write(chunk.data)
        bar.update(chunk.rows)


def is_regular_target(path: Path) -> bool:
    """A regular file, or nothing yet: what may be written as ``.part`` and renamed."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


def export_format(requested: str | None, output: str | None) -> ExportFormat:
    """``--format`` (argparse checked it against the table), else the output's suffix."""
    if requested is not None:
        return cast(ExportFormat, requested)
    by_suffix = format_for_suffix(Path(output).suffix.lstrip(".")) if output else None
    return by_suffix.name if by_suffix is not None else "ndjson"
