"""Interrupt: cancel scopes first, then a signal or an async exception.

A cell that awaits is stopped by cancelling its ``trio.CancelScope`` on the loop it runs on
(its ``finally`` blocks run). A cell that blocks (``time.sleep``, a busy loop, a C call)
never reaches a checkpoint, and its loop never runs the cancel. So the ``Interrupter``,
which lives on the I/O loop, asks each cell's loop to cancel and waits a short grace period
for the loop to confirm. A cell that runs a step of user code when the interrupt comes is
escalated at once (its loop cannot confirm before the step ends), and one whose loop stays
silent through the grace is escalated then:

- on the main thread, with ``SIGINT`` to that thread; ``_sigint`` raises KeyboardInterrupt
  only where trio's KeyboardInterrupt protection is off, which is exactly while a step of
  user code runs (``_shell.usercode``), and only into the cell being interrupted;
- on a worker thread, with an asynchronous ``KeyboardInterrupt`` set on that thread
  (``PyThreadState_SetAsyncExc``) while, under the cell's gate lock, it runs a step of
  user code; one that arrives just after the step is kept and thrown in at the next one,
  or, when the cell has started to await, cancels it instead (``arrived_while_suspended``).

One interrupt is one KeyboardInterrupt: each ``stop`` is a round (``UserCodeGate.asked``),
and once a round's KeyboardInterrupt is raised (``delivered``) nothing more is sent for it,
neither a repeated escalation nor the cancel, so a cell that catches it can clean up, even
with ``await``. Escalation repeats a few times otherwise, because a blocking C call only
sees the exception once it returns to Python. A cell's loop that cannot be reached
(finished, or any failure of ``run_sync_soon``) is a loop that is gone: nothing to stop.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterable

import attrs
import trio

from .._control import sigint as _sigint
from .._transport.loops import call_soon

log = logging.getLogger("kernel.interrupt")


class UserCodeGate:
    """Whether a cell's user code runs right now, and the KeyboardInterrupts owed to it.

    ``in_user_code`` and ``pending`` are written by the cell's own thread (``usercode``)
    under ``lock``; the interrupter reads them under ``lock`` before raising in a worker
    thread, so an asynchronous exception is set only while a step of user code runs.
    """

    def __init__(self, cancel: Callable[[], object] | None = None) -> None:
        self.lock = threading.Lock()
        self._cancel = cancel
        """Cancels the cell's scope (called on the cell's own thread, in its task)."""
        self.in_user_code = False
        self._steps: list[object] = []
        self.pending: BaseException | None = None
        self.asked = 0
        """Interrupt rounds asked for (I/O loop)."""
        self.delivered = 0
        """Rounds answered by a KeyboardInterrupt raised in (or kept for) the cell."""

    def enter(self, step: object) -> BaseException | None:
        """Mark user code as running; return a kept exception to raise in it first.

        Steps nest when user code runs a cell itself (``get_ipython().run_cell(...)``):
        the mark stays until every step has left.
        """
        with self.lock:
            self._steps.append(step)
            self.in_user_code = True
            pending, self.pending = self.pending, None
        return pending

    def leave(self, step: object) -> None:
        """End ``step`` (idempotent: it may be called again after an async exception)."""
        with self.lock:
            if step in self._steps:
                self._steps.remove(step)
            self.in_user_code = bool(self._steps)

    def keep(self, exc: BaseException) -> None:
        """An exception that arrived outside a step: thrown in at the next step."""
        with self.lock:
            self.pending = self.pending or exc

    def arrived_while_suspended(self, exc: BaseException) -> None:
        """``exc`` arrived just after a step, and the cell's coroutine now awaits something.

        A KeyboardInterrupt here is an interrupt that came a moment too late for the step:
        kept for the next step, it would wait for whatever the cell awaits (possibly for
        ever). The cell is awaiting, so it is stopped as an awaiting cell is, by cancelling
        its scope; the round stays answered, so nothing else is sent for it. Anything else
        (a user's own signal handler raising) is kept for the next step.
        """
        if isinstance(exc, KeyboardInterrupt) and self._cancel is not None:
            self._cancel()
        else:
            self.keep(exc)

    def owed(self) -> bool:
        """An interrupt round is open and no KeyboardInterrupt was raised for it yet."""
        return self.delivered < self.asked

    def claim(self) -> bool:
        """Take the open round's KeyboardInterrupt (False when none is owed)."""
        if not self.owed():
            return False
        self.delivered = self.asked
        return True


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
    gate: UserCodeGate = attrs.field(
        default=attrs.Factory(lambda cell: UserCodeGate(cell.scope.cancel), takes_self=True))
    """When user code runs, and the KeyboardInterrupts owed to the cell."""
    signal_blocked: bool = False
    """An escalation found the SIGINT handler replaced by user code (the cell is told)."""
    watcher: trio.CancelScope | None = None
    """The I/O loop's scope of this cell's timeout watch, cancelled when the cell ends."""


def _on_cell_loop(cell: RunningCell, callback: Callable[[trio.Event], None], event: trio.Event) -> bool:
    """Run ``callback(event)`` on the cell's loop; False when that loop is gone (any failure
    to reach it, ``RunFinishedError`` or other, means there is nothing left to stop)."""
    try:
        cell.token.run_sync_soon(callback, event)
    except Exception:
        return False
    return True


class Interrupter:
    """Stops running cells; every method runs on the I/O loop."""

    def __init__(self, grace: float = 0.01, attempts: int = 5) -> None:
        self.grace = grace
        self.attempts = attempts
        self.io_token = trio.lowlevel.current_trio_token()

    async def stop(self, cells: Iterable[RunningCell], reason: str) -> None:
        """Cancel every cell in ``cells`` and escalate those whose loop does not respond.

        A cell whose thread runs a step of user code right now (its gate says so) is
        escalated at once, before its cancel is even sent: its loop cannot run the cancel
        until that step returns to trio, so waiting the grace would only add the grace to
        the interrupt. If the step ends before the KeyboardInterrupt lands, nothing is
        raised (the SIGINT handler and the worker-thread path both check that user code
        runs) and the cancel that follows does the work. This happens here, before the
        first checkpoint: while a main-thread cell spins, each pass of this loop's
        scheduler waits up to a GIL switch interval (5 ms) to get the GIL back.
        """
        async with trio.open_nursery() as nursery:
            for cell in cells:
                if not cell.finished:
                    if cell.reason is None:
                        cell.reason = reason
                    cell.gate.asked += 1
                    if cell.gate.in_user_code:
                        log.debug("cell on thread %s runs user code: escalating at once", cell.thread_id)
                        self._escalate(cell)
                    nursery.start_soon(self._stop_one, cell)

    async def _stop_one(self, cell: RunningCell) -> None:
        """Cancel ``cell`` on its loop, then escalate while the loop stops answering.

        The loop may answer (run the cancel) and still be held afterwards by blocking code
        in a task the cell started, which no cancel reaches; so after an answer the loop is
        asked again, and escalated if it stops answering, but then never into a step of
        the cell's own coroutine: that is the cell cleaning up after the cancel.
        """
        io_token = self.io_token

        def answer(event: trio.Event) -> None:
            call_soon(io_token, event.set)  # False when the I/O loop is gone: nobody waits

        def cancel_on_cell_loop(event: trio.Event) -> None:
            """On the cell's loop; never raises (that would crash the loop)."""
            if cell.gate.owed():  # no KeyboardInterrupt reached it: the cancel does the work
                cell.scope.cancel()
            answer(event)

        answered = trio.Event()
        if not _on_cell_loop(cell, cancel_on_cell_loop, answered):
            return
        cancelled = False
        wait = self.grace
        for _ in range(self.attempts):
            with trio.move_on_after(wait):
                await answered.wait()
            if cell.finished or not cell.gate.owed():
                return
            if answered.is_set():
                cancelled = True
                answered = trio.Event()
                if not _on_cell_loop(cell, answer, answered):
                    return
            elif not (cancelled and cell.gate.in_user_code):
                log.debug("cell on thread %s: its loop did not answer in %.0f ms: escalating",
                          cell.thread_id, wait * 1000)
                self._escalate(cell)
            wait = max(wait * 5, 0.25)
        log.info("cell on thread %s still runs after %d attempts", cell.thread_id, self.attempts)

    def _escalate(self, cell: RunningCell) -> None:
        if cell.thread_id == threading.main_thread().ident:
            if _sigint.installed():
                _sigint.escalate(cell.thread_id)
            elif _sigint.replaced():
                cell.signal_blocked = True
                log.info("blocking main-thread cell replaced the SIGINT handler: cannot escalate")
            else:
                log.info("blocking main-thread cell: no SIGINT handler of ours, cannot escalate")
            return
        gate = cell.gate
        with gate.lock:
            # Only inside a step of user code; between steps the cancel (or the next
            # attempt) will do.
            if gate.in_user_code and gate.claim():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(cell.thread_id), ctypes.py_object(KeyboardInterrupt)
                )
