"""``streams.supervisor`` as a real process: crash-loop backoff and start-up failures.

The supervisor runs in a child Python process supervising tiny commands, so
its signal handling and SIGCHLD wake-ups are the real ones.
"""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time

from tests.support.live import ROOT

DRIVER = """
import sys
from pathlib import Path
from streams.supervisor import Program, Supervisor

ready_option = sys.argv[1] or None
child = [sys.executable, "-c", "raise SystemExit(3)"]
program = Program("crasher", child, count=1, ready_fd_option=ready_option)
sys.exit(Supervisor([program], cwd=Path.cwd()).run())
"""


def supervise(ready_fd_option: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, ready_fd_option],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stderr is not None
    readable, _, _ = select.select([process.stderr], [], [], max(0.0, deadline - time.monotonic()))
    assert readable, "no message from the supervisor in time"
    return process.stderr.readline()


def test_a_crash_loop_backs_off_exponentially() -> None:
    process = supervise()
    try:
        delays: list[float] = []
        deadline = time.monotonic() + 30
        while len(delays) < 4:
            found = re.search(r"restarting in ([\d.]+)s", read_line(process, deadline))
            if found:
                delays.append(float(found.group(1)))
        assert delays == [0.25, 0.5, 1.0, 2.0]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        process.stderr.close()


def test_a_child_that_dies_before_it_is_ready_stops_the_supervisor() -> None:
    process = supervise("--ready-fd")
    try:
        line = read_line(process, time.monotonic() + 30)
        assert "exited with status 3 before it was ready; stopping" in line
        assert process.wait(timeout=30) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
