"""Kernel subshells (JEP 91): extra shells, each with its own thread, loop and queue.

A subshell shares the user namespace with the main shell but runs its requests on a
thread of its own, so it answers while the main shell is busy (JupyterLab sends widget
comm messages through a subshell). Managed on the I/O loop::

    IOLoop nursery
    └── Subshells._own(runner)            owns one subshell thread
        └── thread: trio.run(ShellRunner.run)

Deleting a subshell interrupts its running cells, stops its loop and joins its thread.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

import trio

from ._interrupt import Interrupter, RunningCell
from ._runner import ShellRunner


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
        return [cell for runner in list(self._runners.values()) for cell in runner.running_cells()]

    async def create(self) -> str:
        """Start a subshell thread and return its id once it accepts requests."""
        subshell_id = str(uuid.uuid4())
        runner = self._make_runner(subshell_id)
        ready = trio.Event()
        token = trio.lowlevel.current_trio_token()
        await self._nursery.start(self._own, subshell_id, runner,
                                  lambda: token.run_sync_soon(ready.set))
        await ready.wait()
        self._runners[subshell_id] = runner
        return subshell_id

    async def delete(self, subshell_id: str) -> bool:
        """Stop a subshell's work and thread; False when there is no such subshell."""
        runner = self._runners.pop(subshell_id, None)
        if runner is None:
            return False
        await self._interrupter.stop(runner.running_cells(include_silent=True), "shutdown")
        runner.stop_threadsafe()
        owner = self._owners.pop(subshell_id)
        owner.cancel()
        return True

    async def _own(self, subshell_id: str, runner: ShellRunner, on_ready: Callable[[], None], *,
                   task_status: trio.TaskStatus[None]) -> None:
        """Run the subshell thread; when cancelled, stop its loop, then wait for the thread."""
        with trio.CancelScope() as scope:
            self._owners[subshell_id] = scope
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(
                    trio.to_thread.run_sync, runner.run_in_own_loop, on_ready,
                    limiter=trio.CapacityLimiter(1)))
                task_status.started()
                try:
                    await trio.sleep_forever()
                finally:
                    runner.stop_threadsafe()
