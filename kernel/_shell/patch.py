"""Process-wide patches that every open kernel shares: the first kernel applies one, the
last to close undoes it.

``sys.stdout``, ``builtins.input``, ``Thread.start`` and the ``comm`` package's functions are
one per process, while kernels (``open_kernel()`` blocks) come and go; each kernel holds one
reference to each patch for as long as it is open. The patched functions themselves hold
no kernel state: they ask the current cell which kernel is calling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class SharedPatch:
    """``apply`` on the first ``install``, ``undo`` on the last ``uninstall``; any thread."""

    def __init__(self, apply: Callable[[], None], undo: Callable[[], None]) -> None:
        self._apply = apply
        self._undo = undo
        self._lock = threading.Lock()
        self._users = 0

    def install(self) -> None:
        with self._lock:
            if self._users == 0:
                self._apply()
            self._users += 1

    def uninstall(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._undo()
