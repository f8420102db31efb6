"""The hand-written inotify binding the tailer used before ``inotify_simple``: a baseline.

``bench/inotify_latency.py`` measures it against the libraries; the tailer
now uses ``streams.logs.files.watch.DirectoryWatch`` (``inotify_simple``),
adopted because it wakes the tailer as fast (docs/benchmarks.md, "inotify
library"). Kept here, unchanged but for this docstring, so the comparison
can be run again.

Linux inotify on the event loop: an inotify file descriptor is pollable;
registered with ``loop.add_reader`` it costs nothing while the file is quiet
and wakes the loop as soon as the kernel queues an event. The directory is
watched, not the file: the file may not exist yet, and a rotation (rename,
then create) is seen as events on its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final

IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_NONBLOCK: Final = 0o4000
IN_CLOEXEC: Final = 0o2000000

WATCH_MASK: Final = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_HEADER: Final = struct.Struct("iIII")  # wd, mask, cookie, len (then the name)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1  # noqa: B018 (raises AttributeError where there is no inotify)
        libc.inotify_add_watch  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()


def available() -> bool:
    return _libc is not None


class DirectoryWatch:
    """Calls ``on_change()`` on the loop for events on ``name`` in ``directory``.

    ``alive`` turns false when the directory goes away (the caller polls and
    may watch again later). ``close()`` unregisters and closes the descriptor.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        on_change: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if _libc is None:
            raise OSError("inotify is not available here")
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        wd = _libc.inotify_add_watch(fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, os.strerror(errno), str(directory))
        self.fd = fd
        self.name = os.fsencode(name)
        self.alive = True
        self._on_change = on_change
        self._loop = loop
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        relevant = False
        offset = 0
        while offset + _HEADER.size <= len(data):
            _wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            name = data[offset + _HEADER.size : offset + _HEADER.size + length].rstrip(b"\0")
            offset += _HEADER.size + length
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                self.alive = False
                relevant = True
            elif mask & IN_Q_OVERFLOW or name == self.name:
                relevant = True
        if relevant:
            self._on_change()
        if not self.alive:
            self.close()

    def close(self) -> None:
        if self.fd < 0:
            return
        self.alive = False
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1
