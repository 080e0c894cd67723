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
from .._shell.patch import SharedPatch

_original_start = threading.Thread.start


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    cell = current_cell.get()
    if cell is not None:
        self._trio_kernel_cell = cell  # type: ignore[attr-defined]  # read by cell_for_output
    _original_start(self, *args, **kwargs)


def _wrap() -> None:
    threading.Thread.start = _start  # type: ignore[method-assign]  # process-wide by nature


def _unwrap() -> None:
    threading.Thread.start = _original_start  # type: ignore[method-assign]


_patch = SharedPatch(_wrap, _unwrap)
install, uninstall = _patch.install, _patch.uninstall
