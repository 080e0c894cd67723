"""Plain ``threading.Thread`` objects started by a cell remember that cell.

Python 3.11-3.13 threads do not inherit context variables, so output written by a thread a
cell started would not know its cell. ``install`` wraps ``Thread.start`` to note the
starting cell on the thread object; ``_cell.cell_for_output`` reads it back. Threads
started outside a cell are unaffected. ``Thread.start`` is one per process, so installing
is reference-counted: every open kernel holds one reference, and the last ``uninstall``
puts the original back.
"""

from __future__ import annotations

import threading
from typing import Any

from .._shell.cell import current_cell

_original_start = threading.Thread.start
_lock = threading.Lock()
_users = 0


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    cell = current_cell.get()
    if cell is not None:
        self._trio_kernel_cell = cell  # type: ignore[attr-defined]  # read by cell_for_output
    _original_start(self, *args, **kwargs)


def install() -> None:
    """Wrap ``Thread.start`` (one reference per open kernel)."""
    global _users
    with _lock:
        if _users == 0:
            threading.Thread.start = _start  # type: ignore[method-assign]  # process-wide by nature
        _users += 1


def uninstall() -> None:
    """Drop one reference; the last one restores ``Thread.start``."""
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            threading.Thread.start = _original_start  # type: ignore[method-assign]
