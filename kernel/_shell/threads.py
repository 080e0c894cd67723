"""Plain ``threading.Thread`` objects started by a cell remember that cell.

Python 3.11-3.13 threads do not inherit context variables, so output written by a thread a
cell started would not know its cell. ``remember_cell_on_start`` wraps ``Thread.start``
once per process to note the starting cell on the thread object; ``_cell.cell_for_output``
reads it back. Threads started outside a cell are unaffected.
"""

from __future__ import annotations

import threading
from typing import Any

from .._shell.cell import current_cell

_original_start = threading.Thread.start


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    cell = current_cell.get()
    if cell is not None:
        self._trio_kernel_cell = cell  # type: ignore[attr-defined]
    _original_start(self, *args, **kwargs)


def remember_cell_on_start() -> None:
    """Install the wrapper (idempotent)."""
    if threading.Thread.start is not _start:
        threading.Thread.start = _start  # type: ignore[method-assign]
