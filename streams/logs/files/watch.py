"""How a tailer learns that its file changed: inotify, watchfiles, or only its poll.

Three strategies side by side, one small interface (``Watch``): ``watching``
says whether changes wake the tailer (then its poll is only a safety net,
``SAFETY_POLL_SECONDS``; otherwise it polls every ``FALLBACK_POLL_SECONDS``),
``ensure()`` re-arms a watch that lost its directory, ``close()`` stops it.

* ``inotify`` (Linux): the directory's inotify descriptor registered on the
  event loop (``DirectoryWatch``): no thread, no latency added. Why not only
  ``watchfiles``: its Rust watcher groups events (it returns a change
  ``step`` ms after the last one), which adds that much latency to every
  line, and it needs a thread that wakes every ``step`` ms. The descriptor
  comes from ``inotify_simple`` (a thin ctypes wrapper): it replaced a
  hand-written one because it wakes the tailer as fast (docs/benchmarks.md,
  "inotify library"; asyncinotify was slower: a task hop and an
  ``add_reader``/``remove_reader`` pair per wait).
* ``watchfiles`` elsewhere: its Rust watcher in a daemon thread of its own,
  waking the loop with ``call_soon_threadsafe``.
* ``poll``: nothing but the poll (tests, odd file systems).

The directory is watched, not the file: the file may not exist yet, and a
rotation (rename, then create) is seen as events on its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal, Protocol

from inotify_simple import INotify, flags, parse_events  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

#: Poll interval while something watches the file's directory (a safety net) and without it.
SAFETY_POLL_SECONDS: Final = 1.0
FALLBACK_POLL_SECONDS: Final = 0.25
#: watchfiles' grouping: at most this long (ms) under constant writes, this quiet (ms) otherwise.
WATCH_DEBOUNCE_MS: Final = 50
WATCH_STEP_MS: Final = 10

#: What a change to the file looks like from its directory (a rotation is a move, then a create).
WATCH_MASK: Final[int] = (
    flags.MODIFY
    | flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.CREATE
    | flags.DELETE
    | flags.DELETE_SELF
    | flags.MOVE_SELF
)
#: The watched directory itself went away: the watch is dead.
_GONE: Final[int] = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED

#: How a tailer learns that its file changed (besides its safety poll).
Watcher = Literal["auto", "inotify", "watchfiles", "poll"]


class Watch(Protocol):
    @property
    def watching(self) -> bool: ...

    def ensure(self) -> None: ...

    def close(self) -> None: ...


#: Another strategy, given to ``Tailer(watcher=...)`` (e.g. ``bench/inotify_latency.py``).
WatchFactory = Callable[[Path, Callable[[], None], asyncio.AbstractEventLoop], Watch]


def resolve(watcher: Watcher | WatchFactory) -> Watcher | WatchFactory:
    """``auto``: inotify where the kernel has it, else watchfiles."""
    if watcher == "auto":
        return "inotify" if inotify_available() else "watchfiles"
    return watcher


def start_watch(
    watcher: Watcher | WatchFactory,
    path: Path,
    wake: Callable[[], None],
    loop: asyncio.AbstractEventLoop,
) -> Watch:
    """Start watching ``path`` with ``watcher``; ``wake()`` runs on ``loop`` on a change."""
    watcher = resolve(watcher)
    if callable(watcher):
        return watcher(path, wake, loop)
    if watcher == "inotify":
        return InotifyWatch(path, wake, loop)
    if watcher == "watchfiles":
        return WatchfilesWatch(path, wake, loop)
    return PollWatch()


class PollWatch:
    """No watch: the tailer polls."""

    watching = False

    def ensure(self) -> None:
        pass

    def close(self) -> None:
        pass


@functools.cache
def inotify_available() -> bool:
    """Whether this kernel and libc offer inotify (Linux)."""
    try:
        INotify().close()
    except (OSError, AttributeError):
        return False
    return True


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
        self._inotify = INotify(nonblocking=True)
        try:
            self._inotify.add_watch(directory, WATCH_MASK)
        except OSError:
            self._inotify.close()
            raise
        self.fd: int = self._inotify.fileno()
        self.name = name
        self.alive = True
        self._on_change = on_change
        self._loop = loop
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)  # one read; inotify_simple parses it
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        relevant = False
        for event in parse_events(data):
            if event.mask & _GONE:
                self.alive = False
                relevant = True
            elif event.mask & flags.Q_OVERFLOW or event.name == self.name:
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
        self._inotify.close()
        self.fd = -1


class InotifyWatch:
    """inotify on the file's directory, re-armed when the directory (re)appears."""

    def __init__(
        self, path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.path = path
        self._wake = wake
        self._loop = loop
        self._watch: DirectoryWatch | None = None
        self._closed = False
        self.ensure()

    @property
    def watching(self) -> bool:
        return self._watch is not None and self._watch.alive

    def ensure(self) -> None:
        if self._closed or self.watching:
            return
        try:
            self._watch = DirectoryWatch(self.path.parent, self.path.name, self._wake, self._loop)
        except OSError:
            self._watch = None  # no directory yet (or no permission): poll

    def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.close()


class WatchfilesWatch:
    """watchfiles in a daemon thread (see ``run``)."""

    def __init__(
        self, path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.path = path
        self.watching = False
        self._wake = wake
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name=f"watch {path}", daemon=True)
        self._thread.start()

    def ensure(self) -> None:
        pass  # the thread re-arms by itself

    def close(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Wake the reader on events for the file (runs in the daemon thread).

        A daemon thread of its own, not ``awatch`` in the loop's executor: a
        server that exits while a tailer runs must not wait for the watcher.
        """
        directory = self.path.parent
        stop = self._stop
        while not stop.is_set():
            if not directory.is_dir():
                self.watching = False
                stop.wait(FALLBACK_POLL_SECONDS)
                continue
            try:
                self.watching = True
                self._watch_directory()
            except RuntimeError:
                return  # the event loop is closed: the process is ending
            except Exception:
                logger.info("watching %s failed; polling instead", directory, exc_info=True)
                self.watching = False
                stop.wait(FALLBACK_POLL_SECONDS)
        self.watching = False

    def _watch_directory(self) -> None:
        """watchfiles on the directory until it stops (``close``) or fails."""
        from watchfiles import watch

        name = self.path.name

        def relevant(_change: object, changed: str) -> bool:
            return os.path.basename(changed) == name

        for _changes in watch(
            self.path.parent,
            watch_filter=relevant,
            debounce=WATCH_DEBOUNCE_MS,
            step=WATCH_STEP_MS,
            stop_event=self._stop,
            recursive=False,
            rust_timeout=0,
            raise_interrupt=False,
        ):
            self._loop.call_soon_threadsafe(self._wake)
