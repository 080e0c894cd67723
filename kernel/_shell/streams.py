"""``sys.stdout``/``sys.stderr`` replacements that route text to the current cell.

One pair of streams per process (``sys.stdout`` is process-wide), but no kernel state in
them: each ``write`` asks ``_cell.cell_for_output()`` which cell, and so which kernel's
iopub, the text belongs to. Text written outside any cell goes to the stream that was
there before, so an application that embeds a kernel keeps its own terminal output.
Installing is reference-counted so that several kernels in one process share one pair
and the last one to close restores the originals.

``before_write`` hooks (``fdcapture``) run on ``flush`` and before a write to a cell that
follows a pause (``QUIET_GAP``): output a subprocess or C code wrote to fd 1/2 meanwhile is
forwarded first, so it is not spliced into the middle of a line printed after it.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .._shell.cell import cell_for_output
from .._shell.patch import SharedPatch


class CellStream(io.TextIOBase):
    """A text stream whose writes become iopub ``stream`` messages of the current cell."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        super().__init__()
        self._name = name
        self.fallback = fallback

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        cell = cell_for_output()
        if cell is None:
            return self.fallback.write(text)
        if before_write:
            now = time.monotonic()
            if now - last_write[0] > QUIET_GAP:
                for hook in before_write:
                    hook(False)
            last_write[0] = now
        cell.iopub.write_stream(cell.parent, self._name, text)
        return len(text)

    def flush(self) -> None:
        """Forward fd-level output written so far; the iopub socket task sends the rest as
        soon as its loop runs."""
        for hook in before_write:
            hook(True)


before_write: list[Callable[[bool], None]] = []
"""Called with ``force`` (True on ``flush``) before text is written to a cell."""
last_write = [0.0]
QUIET_GAP = 0.0005
"""``before_write`` runs for a write that comes more than this long after the previous
one: the code did something else in between (ran a subprocess, called C code), which
may have written to the fds. A tight print loop does not pay for a check per write."""


_saved: list[TextIO] = []


def _route() -> None:
    """Route ``sys.stdout``/``sys.stderr`` through cell streams."""
    _saved[:] = [sys.stdout, sys.stderr]
    sys.stdout = CellStream("stdout", sys.stdout)
    sys.stderr = CellStream("stderr", sys.stderr)


def _restore() -> None:
    sys.stdout, sys.stderr = _saved
    _saved.clear()


_patch = SharedPatch(_route, _restore)
install, uninstall = _patch.install, _patch.uninstall
