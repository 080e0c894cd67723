"""Busy/idle status: per request, and for the kernel as a whole.

Every request gets ``busy`` and ``idle`` with its own parent header (clients such as
nbclient wait for the idle of *their* request). Frontends that show one kernel status
(JupyterLab's indicator) take the latest status message, so when a request ends while
others still run (a task cell, a cell on a subshell), the tracker follows the ``idle`` with
a ``busy`` parented to a request still running: the kernel reads as idle only when nothing
runs. Thread-safe: requests start and end on the I/O loop, the shell loops and workers.
"""

from __future__ import annotations

import threading
from typing import Any

from .._core.wire import Outgoing
from .._transport.iopub import IOPubOutbox


class StatusTracker:
    """Publishes status messages and remembers which requests are in progress."""

    def __init__(self, iopub: IOPubOutbox) -> None:
        self._iopub = iopub
        self._lock = threading.Lock()
        self._active: dict[int, dict[str, Any]] = {}

    def _put(self, state: str, parent: dict[str, Any]) -> None:
        self._iopub.put(Outgoing("status", {"execution_state": state}, parent))

    def starting(self) -> None:
        self._put("starting", {})

    def busy(self, parent: dict[str, Any]) -> None:
        with self._lock:
            self._active[id(parent)] = parent
            self._put("busy", parent)

    def idle(self, parent: dict[str, Any]) -> None:
        with self._lock:
            self._active.pop(id(parent), None)
            self._put("idle", parent)
            if self._active:
                self._put("busy", next(reversed(self._active.values())))
