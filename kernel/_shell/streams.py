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
``flush`` also tells the iopub outbox to send what was written now instead of at the end
of its batch (``_transport.iopub``).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .._shell.cell import cell_for_output, current_cell
from .._shell.patch import SharedPatch


class CellStream(io.TextIOBase):
    """A text stream whose writes become iopub ``stream`` messages of the current cell."""

    __slots__ = ("_last_write", "_name", "fallback")
    # Slots: ``write`` runs twice per ``print``, and attributes of an ``io`` subclass
    # without them are looked up in a real instance dict.

    def __init__(self, name: str, fallback: TextIO) -> None:
        super().__init__()
        self._name = name
        self.fallback = fallback
        self._last_write = 0.0

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
        """The hot path of every ``print`` (two calls each): one context variable lookup,
        a clock read only when fd capture is on, and the outbox's locked append."""
        cell = _current_cell()
        if cell is None:
            cell = cell_for_output()
            if cell is None:
                return self.fallback.write(text)
        if before_write:
            now = _monotonic()
            if now - self._last_write > QUIET_GAP:
                for hook in before_write:
                    hook(False)
            self._last_write = now
        return cell.iopub.write_stream(cell.parent, self._name, text)

    def flush(self) -> None:
        """Forward fd-level output written so far, and have the iopub socket task send the
        text written so far now rather than at the end of its batch."""
        for hook in before_write:
            hook(True)
        cell = cell_for_output()
        if cell is not None:
            cell.iopub.flush_streams()


_current_cell = current_cell.get
_monotonic = time.monotonic

before_write: list[Callable[[bool], None]] = []
"""Called with ``force`` (True on ``flush``) before text is written to a cell."""
QUIET_GAP = 0.0005
"""``before_write`` runs for a write that comes more than this long after the previous
one to the same stream: the code did something else in between (ran a subprocess, called
C code), which may have written to the fds. A tight print loop pays a clock read per
write (about a tenth of a ``print``'s cost here), not a look into the pipes."""


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
