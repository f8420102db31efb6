"""A captured stream that says it is a terminal, so commands draw their progress bar on it."""

from __future__ import annotations

import io


class TerminalIO(io.StringIO):
    def isatty(self) -> bool:
        return True
