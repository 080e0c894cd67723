"""Kernel subshells (JEP 91): extra shells, each with its own thread, loop and queue.

A subshell shares the user namespace with the main shell but runs its requests on a
thread of its own, so it answers while the main shell is busy (JupyterLab sends widget
comm messages through a subshell). Managed on the I/O loop::

    IOLoop nursery
    └── Subshells._own(runner)            owns one subshell thread
        └── thread: trio.run(ShellRunner.run)

Deleting a subshell interrupts its running cells, stops its loop and joins its thread
(abandoning it after a grace period if one C call still blocks it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import trio

from .._control.interrupt import Interrupter, RunningCell
from .._shell.runner import ShellRunner
from .._transport.loops import call_soon, own_thread

log = logging.getLogger("kernel.subshells")

JOIN_GRACE = 2.0
"""Seconds a stopped subshell's thread may take to end before it is abandoned."""
START_TIMEOUT = 10.0
"""Seconds a new subshell may take to accept requests before its creation fails."""


class SubshellStartError(Exception):
    """A subshell that could not be started; the message is the error reply's evalue."""


class Subshells:
    """The live subshells of one kernel; every method runs on the I/O loop."""

    def __init__(self, nursery: trio.Nursery, interrupter: Interrupter,
                 make_runner: Callable[[str], ShellRunner]) -> None:
        self._nursery = nursery
        self._interrupter = interrupter
        self._make_runner = make_runner
        self._runners: dict[str, ShellRunner] = {}
        self._owners: dict[str, trio.CancelScope] = {}

    def get(self, subshell_id: str) -> ShellRunner | None:
        return self._runners.get(subshell_id)

    def ids(self) -> list[str]:
        return list(self._runners)

    def running_cells(self) -> list[RunningCell]:
        """Every running cell of every subshell, silent ones included."""
        return [cell for runner in list(self._runners.values())
                for cell in runner.running_cells(include_silent=True)]

    async def create(self) -> str:
        """Start a subshell thread and return its id once it accepts requests.

        Bounded: a thread that ends during start-up, or is not ready within
        ``START_TIMEOUT``, raises ``SubshellStartError`` (the request's error reply).
        """
        subshell_id = str(uuid.uuid4())
        runner = self._make_runner(subshell_id)
        ready = trio.Event()
        settled = trio.Event()  # ready, or the thread has ended
        token = trio.lowlevel.current_trio_token()

        def on_ready() -> None:  # on the I/O loop
            ready.set()
            settled.set()

        await self._nursery.start(self._own, subshell_id, runner,
                                  lambda: call_soon(token, on_ready), settled)
        with trio.move_on_after(START_TIMEOUT):
            await settled.wait()
        if not ready.is_set():
            owner = self._owners.pop(subshell_id, None)
            if owner is not None:
                owner.cancel()
            why = ("its thread ended during start-up" if settled.is_set()
                   else f"it was not ready within {START_TIMEOUT:.0f} s")
            raise SubshellStartError(f"the subshell could not be started: {why}")
        self._runners[subshell_id] = runner
        return subshell_id

    async def delete(self, subshell_id: str) -> bool:
        """Interrupt a subshell's work and stop its loop; False when there is no such subshell.

        Its owner task (``_own``) then joins the thread, or abandons it after ``JOIN_GRACE``.
        """
        runner = self._runners.pop(subshell_id, None)
        if runner is None:
            return False
        await self._interrupter.stop(runner.running_cells(include_silent=True), "shutdown")
        self._owners.pop(subshell_id).cancel()
        return True

    async def _own(self, subshell_id: str, runner: ShellRunner, on_ready: Callable[[], None],
                   thread_ended: trio.Event, *, task_status: trio.TaskStatus[None]) -> None:
        """Run the subshell thread; when cancelled, stop its loop and wait for the thread.

        A thread still blocked after ``JOIN_GRACE`` (one long C call that no interrupt can
        stop) is abandoned, with a log line, rather than left to hang the kernel's shutdown.
        """
        thread_done = trio.Event()

        async def run_thread() -> None:
            try:  # own_thread logs what the thread raised: a stray KeyboardInterrupt must not end the I/O loop
                await own_thread(runner.run_in_own_loop, on_ready, name=f"subshell {subshell_id}",
                                 abandon_on_cancel=True)
            finally:
                thread_done.set()
                thread_ended.set()
                self._runners.pop(subshell_id, None)

        with trio.CancelScope() as scope:
            self._owners[subshell_id] = scope
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_thread)
                task_status.started()
                try:
                    await thread_done.wait()
                finally:
                    runner.stop_threadsafe()
                    with trio.CancelScope(shield=True), trio.move_on_after(JOIN_GRACE):
                        await thread_done.wait()
                    if not thread_done.is_set():
                        log.warning("subshell %s is still blocked: its thread is abandoned", subshell_id)
                    nursery.cancel_scope.cancel()
        self._owners.pop(subshell_id, None)
