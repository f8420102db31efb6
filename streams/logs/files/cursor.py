"""The file source's cursor: ``"<inode>:<offset>"``, the byte offset just after a line.

It survives a server restart and points into the file itself, so any server
process tailing the same file understands it. Outside ``streams.logs.files``
it is opaque (``streams.logs.lines.LogCursor``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from streams.logs.lines import LogLine, parse_lines

_CURSOR_RE: Final = re.compile(r"(\d{1,20}):(\d{1,20})")

#: What a client is told a cursor looks like when it sends garbage.
CURSOR_SYNTAX: Final = "<inode>:<offset>"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a log file: the inode and a byte offset (just after a line)."""

    inode: int
    offset: int

    @classmethod
    def origin(cls) -> Cursor:
        """The cursor of "no file yet": resume from the start of whatever file appears."""
        return cls(0, 0)

    def __str__(self) -> str:
        return f"{self.inode}:{self.offset}"

    @classmethod
    def parse(cls, value: str) -> Cursor:
        """Parse ``"<inode>:<offset>"``; ``ValueError`` on anything else."""
        match = _CURSOR_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"not a log cursor: {value!r}")
        return cls(int(match.group(1)), int(match.group(2)))


def parse_texts(texts: Iterable[str], inode: int = 1) -> list[LogLine]:
    """Parse lines as if written one after the other to a file with ``inode`` (tests, demos)."""
    offset = 0
    pairs = []
    for text in texts:
        offset += len(text.encode()) + 1
        pairs.append((text, Cursor(inode, offset)))
    return list(parse_lines(pairs))
