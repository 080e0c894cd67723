"""Output written to file descriptors 1 and 2 goes to the cell that produced it.

``print`` goes through ``sys.stdout``; a subprocess (``os.system``) or a C extension
(``printf``, ``write(1, ...)``) writes to the file descriptors themselves. ipykernel
captures those by default, so does the standalone kernel: fds 1 and 2 become the write
ends of two pipes, and a reader thread owned by ``FdCapture`` (joined at ``close``) turns
what arrives into ``stream`` output of the cell that ran last (IPython's ``pre_run_cell``
event says which). When a cell ends (``post_run_cell``, before its reply) what its code
left in the pipes is read at once, so that output precedes the reply and idle status.
Those checks happen twice per cell and nearly always find the pipes empty; on Linux they
ask the pipe's byte count with an ``ioctl`` made *without releasing the GIL* (ctypes'
``PyDLL``), because a read that releases it hands the GIL to the I/O thread waiting to
send the cell's busy status, and the cell then waits for that thread's whole step.

Output with no cell to go to (before the first cell) is written to the original fd, and
the kernel's own log lines never enter the pipes (``logs`` writes to its own duplicate of
the original stderr). ``close`` restores fds 1 and 2. An embedded kernel does not capture:
the fds belong to the application.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import os
import selectors
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._shell import streams as _streams
from .._shell.cell import Cell, current_cell

log = logging.getLogger("kernel.fdcapture")

_NAMES = {1: "stdout", 2: "stderr"}
_CHUNK = 1 << 16


def _gil_holding_byte_count() -> Callable[[int], int] | None:
    """``fd -> bytes waiting in the pipe``, asked without releasing the GIL (Linux only:
    ``ioctl`` is variadic, which ctypes calls portably only with the System V ABI)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import termios

        ioctl = ctypes.PyDLL(None).ioctl  # PyDLL: the call keeps the GIL
    except (ImportError, OSError, AttributeError):
        return None
    request = termios.FIONREAD
    count = ctypes.c_int(0)
    pointer = ctypes.byref(count)

    def waiting(fd: int) -> int:
        return count.value if ioctl(fd, request, pointer) == 0 else 1  # on error: read

    return waiting


_bytes_waiting = _gil_holding_byte_count()


class FdCapture:
    """Pipes in place of fds 1 and 2, and the thread that reads them."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._lock = threading.Lock()
        self._cell: Cell | None = None
        self._saved: dict[int, int] = {}
        self._readers: dict[int, int] = {}
        self._decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in _NAMES}
        self._wake_r, self._wake_w = os.pipe()
        for fd in _NAMES:
            self._saved[fd] = os.dup(fd)
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            os.dup2(write_end, fd)
            os.close(write_end)
            self._readers[fd] = read_end
        self._thread = threading.Thread(target=self._read_loop, name="trio-kernel fd capture", daemon=True)
        self._thread.start()
        shell.events.register("pre_run_cell", self._on_pre_run_cell)
        shell.events.register("post_run_cell", self._on_post_run_cell)
        _streams.before_write.append(self.before_write)

    def _on_pre_run_cell(self, info: Any) -> None:
        """On the cell's thread: from now on, fd output belongs to this cell."""
        cell = current_cell.get()
        if cell is not None:
            with self._lock:  # what the previous cell left still goes to it
                self._drain_locked()
                self._cell = cell

    def _on_post_run_cell(self, result: Any) -> None:
        self.drain()

    def before_write(self, force: bool) -> None:
        """``sys.stdout``/``sys.stderr`` are about to write after a pause, or flush:
        forward fd output that came first (see ``streams.QUIET_GAP``)."""
        self.drain()

    def drain(self) -> None:
        """Forward everything already in the pipes (any thread). Taking the lock also waits
        for a chunk the reader thread is forwarding."""
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        waiting = _bytes_waiting
        for fd, read_end in self._readers.items():
            if waiting is not None and not waiting(read_end):
                continue
            while self._read_once(fd, read_end):
                pass

    def _read_loop(self) -> None:
        """Thread body: wait for data or the wake pipe; forward under the lock."""
        with selectors.DefaultSelector() as selector:
            for fd, read_end in self._readers.items():
                selector.register(read_end, selectors.EVENT_READ, fd)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    with self._lock:
                        self._read_once(key.data, key.fd)

    def _read_once(self, fd: int, read_end: int) -> bool:
        """Under the lock: forward one chunk; False when the pipe is empty."""
        try:
            data = os.read(read_end, _CHUNK)
        except BlockingIOError:
            return False
        if not data:
            return False
        text = self._decoders[fd].decode(data)
        cell = self._cell
        if cell is None:
            _write_all(self._saved[fd], data)
        elif text:
            cell.iopub.write_stream(cell.parent, _NAMES[fd], text)
        return True

    def close(self) -> None:
        """Restore fds 1 and 2, forward what is left, and join the reader thread."""
        _streams.before_write.remove(self.before_write)
        self._shell.events.unregister("pre_run_cell", self._on_pre_run_cell)
        self._shell.events.unregister("post_run_cell", self._on_post_run_cell)
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
        self.drain()
        os.write(self._wake_w, b"x")
        self._thread.join()
        for descriptor in (*self._readers.values(), *self._saved.values(), self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(descriptor)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except OSError:
            return
        data = data[written:]
