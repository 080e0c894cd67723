"""Starting debugpy, once per process, and keeping it out of the kernel's own threads.

``debugpy.listen`` can be called once per process: it spawns debugpy's adapter (a separate
process, which ends when its connection to this one closes) and connects pydevd, the
in-process debuggee, to it, which starts pydevd's own threads and sets a trace function on
every existing and future thread (except those marked ``pydev_do_not_trace``). The first
kernel of a process to start debugging calls it; later ones reuse the adapter's address.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

_listen_lock = threading.Lock()
_adapter: tuple[str, int] | None = None


def listen() -> tuple[str, int]:
    """Import debugpy and start its adapter, once per process (worker thread)."""
    global _adapter
    with _listen_lock:
        if _adapter is None:
            # pydevd warns on stderr that stdlib modules are frozen (only stdlib breakpoints suffer).
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            import debugpy

            debugpy.configure(subProcess=False)
            host, port = debugpy.listen(("127.0.0.1", 0))
            _adapter = (str(host), int(port))
        return _adapter


def mark_kernel_threads() -> None:
    """Keep debugpy out of the I/O thread (current), the heartbeat and the history saver."""
    from IPython.core.history import HistorySavingThread

    from .._transport.heartbeat import serve_heartbeat

    threading.current_thread().pydev_do_not_trace = True  # type: ignore[attr-defined]
    frames = sys._current_frames()
    for thread in threading.enumerate():
        if isinstance(thread, HistorySavingThread) or _runs(frames.get(thread.ident or -1),
                                                             serve_heartbeat.__code__):
            thread.pydev_do_not_trace = True  # type: ignore[attr-defined]


def _runs(frame: Any, code: Any) -> bool:
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False
