"""Exit when the process that started the kernel dies, or on SIGTERM, whatever user code does.

Frontends set ``JPY_PARENT_PID``; when that process is gone (the kernel was re-parented),
the kernel has no one to serve and must not linger. SIGTERM asks for the same ending.
Both are watched from a thread of their own (``ExitWatch``), because the main thread may
be held by a cell (``while True: pass``, ``time.sleep(1000)``, ``input()``), and then no
trio task there would ever run. The SIGTERM handler only writes a byte to a pipe the watch
thread waits on (safe in a signal handler, whatever the main thread was doing).

On either event the watch asks the kernel to stop (``request_stop``: interrupt every cell,
which escalates into blocking code, and end the kernel's loop); if the kernel has not
finished after ``grace`` seconds (a cell that swallows KeyboardInterrupt, or the kernel was
still starting), it removes the connection file the kernel wrote and ends the process.
The parent is polled twice a second: there is no portable notification for a parent's
death that works for a non-direct parent. The thread is started and joined by ``cli._run``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable
from types import FrameType


def _parent_pid() -> int | None:
    value = os.environ.get("JPY_PARENT_PID", "")
    return int(value) if value.isdigit() and int(value) > 1 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExitWatch:
    """The watch thread and the SIGTERM handler that wakes it (main thread installs)."""

    def __init__(self, cleanup: Callable[[], None], grace: float = 3.0, interval: float = 0.5) -> None:
        self._cleanup = cleanup
        self._grace = grace
        self._interval = interval
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._request_stop: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._watch, name="trio-kernel exit watch", daemon=True)
        self._parent = _parent_pid()
        self._original_ppid = os.getppid()

    def start(self) -> None:
        """Install the SIGTERM handler and start the thread (main thread, before trio.run)."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._thread.start()

    def serving(self, request_stop: Callable[[], None] | None) -> None:
        """Tell the watch how to stop the kernel (thread-safe), or that it can no longer."""
        with self._lock:
            self._request_stop = request_stop

    def close(self) -> None:
        """The kernel has ended: stop the thread and wait for it (main thread)."""
        self._finished.set()
        self._wake()
        self._thread.join()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._wake(b"T")

    def _wake(self, byte: bytes = b"x") -> None:
        with contextlib.suppress(OSError):  # a full pipe already wakes the thread
            os.write(self._wake_write, byte)

    def _parent_gone(self) -> bool:
        if self._parent is not None:
            return not _alive(self._parent)
        return self._original_ppid > 1 and os.getppid() != self._original_ppid

    def _watch(self) -> None:
        """Thread body: wait for SIGTERM, the parent's death or the kernel's end."""
        while not self._finished.is_set():
            readable, _, _ = select.select([self._wake_read], [], [], self._interval)
            if readable and b"T" in os.read(self._wake_read, 512):
                self._end("SIGTERM")
                return
            if self._parent_gone():
                self._end("the parent process died")
                return

    def _end(self, why: str) -> None:
        with self._lock:
            request_stop = self._request_stop
        if request_stop is not None:
            request_stop()
        if self._finished.wait(self._grace):
            return
        from .logs import to_process_stderr

        to_process_stderr(f"trio-kernel: {why} and the kernel did not stop within {self._grace:.0f} s: exiting")
        self._cleanup()
        os._exit(0)
