"""Interrupt: cancel scopes first, then a signal or an async exception.

A cell that awaits is stopped by cancelling its ``trio.CancelScope`` on the loop it runs on
(its ``finally`` blocks run). A cell that blocks (``time.sleep``, a busy loop, a C call)
never reaches a checkpoint, and its loop never runs the cancel. So the ``Interrupter``,
which lives on the I/O loop, asks each cell's loop to cancel and waits a short grace period
for the loop to confirm. A cell whose loop stays silent is escalated:

- on the main thread, with ``SIGINT`` to that thread; ``_sigint`` raises KeyboardInterrupt
  only where trio's KeyboardInterrupt protection is off, which the shell turns off exactly
  around user code (``TrioShell.run_code``), so it never lands in kernel or trio code;
- on a worker thread, with an asynchronous ``KeyboardInterrupt`` set on that thread
  (``PyThreadState_SetAsyncExc``), delivered at its next bytecode.

Escalation repeats a few times, because a blocking C call only sees the exception once it
returns to Python.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterable

import attrs
import trio

from .._control import sigint as _sigint

log = logging.getLogger("kernel.interrupt")


@attrs.define(eq=False)
class RunningCell:
    """A cell while it runs: the handles an interrupt needs, on any thread."""

    scope: trio.CancelScope
    token: trio.lowlevel.TrioToken
    thread_id: int
    silent: bool = False
    stop_on_error: bool = True
    timeout: float | None = None
    reason: str | None = None
    """Why the cell was stopped: ``"interrupt"``, ``"timeout"`` or ``"shutdown"``; set once."""
    finished: bool = False
    in_user_code: bool = False
    """Set by the shell around user code: a worker thread is only escalated while it runs it."""
    watcher: trio.CancelScope | None = None
    """The I/O loop's scope of this cell's timeout watch, cancelled when the cell ends."""


class Interrupter:
    """Stops running cells; every method runs on the I/O loop."""

    def __init__(self, grace: float = 0.01, attempts: int = 5) -> None:
        self.grace = grace
        self.attempts = attempts
        self.io_token = trio.lowlevel.current_trio_token()

    async def stop(self, cells: Iterable[RunningCell], reason: str) -> None:
        """Cancel every cell in ``cells`` and escalate those whose loop does not respond."""
        async with trio.open_nursery() as nursery:
            for cell in cells:
                if not cell.finished:
                    if cell.reason is None:
                        cell.reason = reason
                    nursery.start_soon(self._stop_one, cell)

    async def _stop_one(self, cell: RunningCell) -> None:
        acked = trio.Event()

        def cancel_on_cell_loop() -> None:
            cell.scope.cancel()
            self.io_token.run_sync_soon(acked.set)

        try:
            cell.token.run_sync_soon(cancel_on_cell_loop)
        except trio.RunFinishedError:
            return
        wait = self.grace
        for _ in range(self.attempts):
            with trio.move_on_after(wait):
                await acked.wait()
                return
            if cell.finished:
                return
            log.debug("cell on thread %s did not confirm the cancel in %.0f ms: escalating",
                      cell.thread_id, wait * 1000)
            self._escalate(cell)
            wait = max(wait * 5, 0.25)
        log.warning("cell on thread %s did not stop after %d attempts", cell.thread_id, self.attempts)

    def _escalate(self, cell: RunningCell) -> None:
        if cell.thread_id == threading.main_thread().ident:
            if _sigint.installed():
                _sigint.escalate(cell.thread_id)
            else:
                log.info("blocking main-thread cell: no SIGINT handler of ours, cannot escalate")
            return
        if not cell.in_user_code:
            return  # between blocks, or done: the cancel (or the next attempt) will do
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(cell.thread_id), ctypes.py_object(KeyboardInterrupt)
        )
