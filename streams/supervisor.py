"""A small process supervisor: ``serve --workers N`` and ``cluster`` run their children under it.

Design choices, each for a failure seen or expected:

* **A crashed child is restarted, with backoff.** A child that exits after
  running a while is restarted at once (after ``BACKOFF_BASE``); one that keeps
  dying young waits twice as long each time, up to ``BACKOFF_MAX``, so a crash
  loop (a bad setting, the database down) costs a few restarts a minute
  rather than a core.
* **Start-up failures stop everything.** A child that exits before it ever
  reported ready during the first start means the configuration is wrong:
  the supervisor stops the others and exits 1 instead of looping on it.
* **No orphans.** Ctrl-C and SIGTERM stop every child (SIGTERM, then SIGKILL
  after ``grace`` seconds; the same signal again kills at once). Children run in
  their own process groups, so a terminal's Ctrl-C reaches only the
  supervisor and each child gets exactly one SIGTERM from it. If the
  supervisor itself dies without cleaning up (SIGKILL, OOM), Linux's
  ``PR_SET_PDEATHSIG`` kills each child too: SIGKILL rather than SIGTERM, as
  nobody is left to escalate if a child's graceful stop hangs (a task worker
  finishing an export); an export killed that way is reaped as stale like any
  other lost worker.
* **Readiness through a pipe.** A program started with ``ready_fd_option``
  gets the write end of a pipe and writes to it once it serves; the
  supervisor reports "ready" when every such child has done so.

Signals are turned into bytes on a socket (``signal.set_wakeup_fd``) and the
supervisor waits on a selector, so it reacts at once to a signal, a child's
exit (SIGCHLD) and a readiness message, and never polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BACKOFF_BASE = 0.25
BACKOFF_MAX = 10.0
# A child that ran at least this long was healthy: its exit starts the backoff afresh.
STABLE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Program:
    """A command to keep ``count`` copies of running.

    ``ready_fd_option``: the command accepts ``OPTION FD`` and writes to FD
    once it is ready (``serve`` does, with ``--ready-fd``). ``pass_fds``: file
    descriptors the children inherit (the listening socket).
    """

    name: str
    argv: Sequence[str]
    count: int = 1
    pass_fds: tuple[int, ...] = ()
    ready_fd_option: str | None = None


@dataclass
class _Slot:
    program: Program
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready_pipe: int | None = None
    ready: bool = False
    quick_failures: int = 0
    restart_at: float | None = None

    @property
    def label(self) -> str:
        return f"{self.program.name}[{self.index}]"


@dataclass
class Supervisor:
    """Runs ``programs`` until a signal stops them; ``run`` returns the exit status."""

    programs: Sequence[Program]
    cwd: Path
    grace: float = 10.0
    on_ready: Callable[[list[int]], None] | None = None
    log: IO[str] = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        self._slots = [
            _Slot(program, index)
            for program in self.programs
            for index in range(1, program.count + 1)
        ]
        self._selector = selectors.DefaultSelector()
        self._stop_signal: int | None = None
        self._signals = 0
        self._announced = False

    def run(self) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        self._selector.register(wake_read, selectors.EVENT_READ)
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
        }
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        try:
            for slot in self._slots:
                self._start(slot)
            return self._supervise(wake_read)
        finally:
            self._stop_all(wake_read)
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._selector.close()
            wake_read.close()
            wake_write.close()

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self._slots if slot.process is not None]

    # -- the loop ---------------------------------------------------------

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGCHLD:
            return
        if self._stop_signal is None:
            self._stop_signal = signum
        if signum == self._stop_signal:
            # Counts repeats of the signal that started the stop: Ctrl-C twice
            # kills at once, while a SIGTERM after a terminal's Ctrl-C (``make
            # run`` stopping its children) lets the graceful stop finish.
            self._signals += 1

    def _supervise(self, wake: socket.socket) -> int:
        while self._stop_signal is None:
            self._wait(wake, self._next_restart_delay())
            if self._stop_signal is not None:
                break
            for slot in self._slots:
                if slot.process is not None and slot.process.poll() is not None:
                    if not self._announced and not slot.ready:
                        self._say(
                            f"{slot.label} exited with {describe(slot.process.returncode)} "
                            "before it was ready; stopping"
                        )
                        return 1
                    self._schedule_restart(slot)
                elif slot.restart_at is not None and slot.restart_at <= time.monotonic():
                    self._start(slot)
            if not self._announced and all(slot.ready for slot in self._slots):
                self._announced = True
                if self.on_ready is not None:
                    self.on_ready(self.pids())
        name = signal.Signals(self._stop_signal).name
        self._say(f"{name}: stopping {len(self.pids())} processes")
        return 0

    def _wait(self, wake: socket.socket, timeout: float | None) -> None:
        for key, _ in self._selector.select(timeout):
            if key.fileobj is wake:
                with contextlib.suppress(BlockingIOError):
                    while wake.recv(4096):
                        pass
                continue
            slot = key.data
            assert isinstance(slot, _Slot)
            try:
                data = os.read(slot.ready_pipe, 64) if slot.ready_pipe is not None else b""
            except BlockingIOError:
                continue
            if data:
                slot.ready = True
            if not data or slot.ready:
                self._close_ready_pipe(slot)

    def _next_restart_delay(self) -> float | None:
        due = [slot.restart_at for slot in self._slots if slot.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    # -- children ---------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        program = slot.program
        argv, pass_fds = list(program.argv), list(program.pass_fds)
        write_end = None
        if program.ready_fd_option is not None:
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            slot.ready_pipe, slot.ready = read_end, False
            self._selector.register(read_end, selectors.EVENT_READ, slot)
            argv += [program.ready_fd_option, str(write_end)]
            pass_fds.append(write_end)
        else:
            slot.ready = True
        try:
            slot.process = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                pass_fds=pass_fds,
                process_group=0,
                preexec_fn=_die_with(os.getpid()),
            )
        finally:
            if write_end is not None:
                os.close(write_end)
        slot.started, slot.restart_at = time.monotonic(), None

    def _schedule_restart(self, slot: _Slot) -> None:
        assert slot.process is not None
        uptime = time.monotonic() - slot.started
        slot.quick_failures = 1 if uptime >= STABLE_SECONDS else slot.quick_failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (slot.quick_failures - 1))
        self._say(
            f"{slot.label} (pid {slot.process.pid}) exited with "
            f"{describe(slot.process.returncode)}; restarting in {delay:.2g}s"
        )
        self._close_ready_pipe(slot)
        slot.process, slot.restart_at = None, time.monotonic() + delay

    def _close_ready_pipe(self, slot: _Slot) -> None:
        if slot.ready_pipe is not None:
            self._selector.unregister(slot.ready_pipe)
            os.close(slot.ready_pipe)
            slot.ready_pipe = None

    def _stop_all(self, wake: socket.socket) -> None:
        """SIGTERM every child, SIGKILL what outlives ``grace`` (or a second signal)."""
        signals = self._signals
        running = [slot.process for slot in self._slots if slot.process is not None]
        for process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + self.grace
        while any(p.poll() is None for p in running):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._signals > signals:
                break
            self._wait(wake, remaining)
        for process in running:
            if process.poll() is None:
                self._say(f"pid {process.pid} did not stop; killing it")
                process.kill()
            process.wait()
        for slot in self._slots:
            self._close_ready_pipe(slot)
            slot.process = None

    def _say(self, message: str) -> None:
        self.log.write(f"supervisor: {message}\n")
        self.log.flush()


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def _die_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGKILL when ``parent`` dies (Linux only).

    ``getppid`` after ``prctl`` closes the race where the parent died between
    ``fork`` and ``prctl``: the child would otherwise live on, adopted by init.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal
