"""The file side of shipping: reading without parsing, through rotations, and where it stopped.

* ``ShippingReader`` is the file source's reader (``streams.logs.files.reader``)
  with a parser that does not parse (``RawLines``: the dashboard reads levels,
  not the shipper), a ``resume`` at a recorded cursor, and rotations followed
  through every numbered generation (``PATH.<k>`` → ``PATH.<k-1>`` → ... →
  ``PATH``), so a shipper that fell behind skips none.
* ``Shipped`` is a host's position as the ship script records it in Redis:
  the batch number, the file cursor after its last entry and a
  ``Fingerprint`` of the file's first KiB. Inodes are reused at once (a
  deleted log's number is often the new log's), so ``open_if`` takes a file
  for the recorded one only if both match.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streams.logs.files.cursor import Cursor
from streams.logs.files.reader import FileReader
from streams.logs.lines import LineParser, LogCursor, LogLine

#: How much of a file's start its fingerprint covers.
FINGERPRINT_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The CRC-32 of a file's first ``length`` bytes: tells a reused inode from the same file."""

    length: int
    crc: int

    @classmethod
    def of(cls, fd: int, length: int = FINGERPRINT_BYTES) -> Fingerprint:
        head = os.pread(fd, length, 0)
        return cls(len(head), zlib.crc32(head))

    @classmethod
    def parse(cls, value: str) -> Fingerprint:
        length, _, crc = value.partition(":")
        return cls(int(length), int(crc))

    def matches(self, fd: int) -> bool:
        return Fingerprint.of(fd, self.length) == self

    def __str__(self) -> str:
        return f"{self.length}:{self.crc}"


@dataclass(frozen=True, slots=True)
class Shipped:
    """A host's position as recorded in Redis: its last batch, file cursor and fingerprint."""

    batch: int
    cursor: Cursor
    fingerprint: Fingerprint | None = None

    @classmethod
    def parse(cls, value: str) -> Shipped:
        number, cursor, *rest = value.split(" ")
        fingerprint = Fingerprint.parse(rest[0]) if rest else None
        return cls(int(number), Cursor.parse(cursor), fingerprint)

    def __str__(self) -> str:
        if self.fingerprint is None:
            return f"{self.batch} {self.cursor}"
        return f"{self.batch} {self.cursor} {self.fingerprint}"


class RawLines(LineParser):
    """A parser that does not parse: the shipper moves text; the dashboard reads it."""

    def parse(self, text: str, cursor: LogCursor) -> LogLine:
        return LogLine(text, "info", cursor)


class ShippingReader(FileReader):
    """The file source's reader, unparsed, resuming at a shipped cursor, through rotations.

    After draining a rotated file, the file source's reader goes on with
    whatever ``PATH`` is now. A shipper that fell behind (Redis was away, or
    it was stopped) may have been overtaken by more than one rotation: the
    file it drained is then ``PATH.2`` or later, and the newer ones between
    it and ``PATH`` would be skipped. So after a rotation this reader goes
    on with the next newer numbered sibling (``PATH.<k-1>`` after
    ``PATH.<k>``) until it reaches ``PATH`` again.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.parser = RawLines()

    def resume(self, fd: int, offset: int) -> None:
        """Follow ``fd`` (the file the last shipped line was in) from ``offset``."""
        self._switch(fd, offset)

    def _open(self) -> int | None:
        if self.fd is not None:  # a rotation: the file after the one just drained
            fd = self._open_newer_sibling()
            if fd is not None:
                return fd
        return super()._open()

    def _open_newer_sibling(self) -> int | None:
        number = _rotation_number(self.path, self.inode)
        if number is None or number <= 1:
            return None
        try:
            return os.open(
                self.path.with_name(f"{self.path.name}.{number - 1}"),
                os.O_RDONLY | getattr(os, "O_CLOEXEC", 0),
            )
        except OSError:
            return None


def _rotation_number(path: Path, inode: int, limit: int = 20) -> int | None:
    """``k`` if the file ``inode`` is now ``PATH.<k>``, else ``None``."""
    for number in range(1, limit + 1):
        try:
            if os.stat(path.with_name(f"{path.name}.{number}")).st_ino == inode:
                return number
        except OSError:
            return None  # numbered rotation has no holes
    return None


def candidates(path: Path) -> list[Path]:
    """``PATH``, then its rotated names beside it (``PATH.1``, ``PATH.2``...)."""
    prefix = path.name + "."
    try:
        names = os.listdir(path.parent)
    except OSError:
        names = []

    def order(name: str) -> tuple[int, str]:
        suffix = name[len(prefix) :]
        return (int(suffix), "") if suffix.isdigit() else (1 << 30, suffix)

    siblings = sorted((n for n in names if n.startswith(prefix)), key=order)
    return [path, *(path.parent / n for n in siblings)]


def open_if(path: Path, inode: int, fingerprint: Fingerprint | None) -> int | None:
    """A descriptor of ``path`` if it is the file ``inode`` with that start, else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    if os.fstat(fd).st_ino == inode and (fingerprint is None or fingerprint.matches(fd)):
        return fd
    os.close(fd)
    return None
