#!/usr/bin/env python3
"""What the truncation check costs a reader step: this tree's reader against another revision's.

The reader (``streams/logs/files/reader.py``) rereads the last 256 bytes
before its offset in the same ``pread`` as the new bytes, to see a file
truncated and regrown past the offset. This measures the step with and
without that, on one machine, in alternating rounds (so load from elsewhere
hits both alike):

* ``idle``: steps on a file that does not change, the whole cost of a step
  that finds nothing (a wake-up with nothing new, a safety poll): CPU
  microseconds per step.
* ``busy``: a writer process appends 120-byte lines without pause while the
  reader steps as fast as it can: steps/s, lines/s and CPU microseconds
  per line (the figure that matters: parsing dominates, and a step's fixed
  cost is spread over its lines).

Usage (not part of ``make test``; about 40 s)::

    .venv/bin/python bench/reader_steps.py --before main --rounds 3
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
READER = "streams/logs/files/reader.py"

WRITER = r"""
import sys, time
line = b"2026-12-02 07:00:00,000 INFO request handled path=/api/items " + b"x" * 57 + b"\n"
with open(sys.argv[1], "ab", buffering=0) as f:
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        f.write(line * 4)
"""


def load(name: str, source: str, directory: Path) -> ModuleType:
    """A reader module from its source text (its imports resolve in this tree)."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def idle(reader_module: ModuleType, path: Path, steps: int) -> float:
    """CPU microseconds per step of a reader at the end of an unchanging file."""
    reader = reader_module.FileReader(path)
    reader.open_at_end()
    cpu = time.process_time()
    for _ in range(steps):
        reader.step()
    cpu = time.process_time() - cpu
    reader.close()
    return cpu / steps * 1e6


def busy(reader_module: ModuleType, path: Path, seconds: float) -> tuple[float, float, float]:
    """Steps/s, lines/s and CPU microseconds per line while a writer appends without pause."""
    path.write_bytes(b"")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seconds + 0.5)])
    reader = reader_module.FileReader(path)
    reader.open_at_end()
    steps = lines = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - wall < seconds:
        result = reader.step()
        steps += 1
        lines += len(result.lines)
        assert not result.notices
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    writer.wait()
    reader.close()
    return steps / wall, lines / wall, cpu / max(lines, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision of the reader to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200_000, help="idle steps per round")
    parser.add_argument("--seconds", type=float, default=4.0, help="busy seconds per round")
    args = parser.parse_args()
    before = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{args.before}:{READER}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as directory:
        modules = {
            f"before ({args.before})": load("reader_before", before, Path(directory)),
            "this tree": load("reader_after", (ROOT / READER).read_text(), Path(directory)),
        }
        log = Path(directory) / "app.log"
        log.write_bytes(b"some line of a log file\n" * 400_000)
        for round_ in range(args.rounds):
            for name, module in modules.items():
                cpu = idle(module, log, args.steps)
                print(f"idle  {name:14s} round {round_}: {cpu:5.2f} us CPU/step", flush=True)
        for round_ in range(args.rounds):
            for name, module in modules.items():
                steps, lines, per_line = busy(module, log, args.seconds)
                print(
                    f"busy  {name:14s} round {round_}: {steps:6,.0f} steps/s, "
                    f"{lines:8,.0f} lines/s, {per_line:5.2f} us CPU/line",
                    flush=True,
                )


if __name__ == "__main__":
    main()
