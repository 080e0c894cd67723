"""asyncio in trio cells: a trampoline that hands asyncio's futures to a trio-asyncio loop.

A cell's top-level ``await`` runs the cell as a coroutine in a trio task. trio drives a
coroutine by the *traps* it yields; asyncio code yields ``asyncio.Future`` objects (or a
bare ``None`` for ``asyncio.sleep(0)``) and expects an event loop to resume it when they
are done. ``drive`` steps the cell's coroutine itself: trio traps are passed on to trio
unchanged (so trio code costs one extra Python frame per trap), asyncio futures are waited
for on the kernel's trio-asyncio loop, so both kinds of ``await`` mix in one cell.

While a step of the cell runs, the cell looks to asyncio like a task of that loop
(``asyncio.get_running_loop()`` and ``asyncio.current_task()`` answer), so libraries that
need a current task (``asyncio.timeout``, aiohttp's timers) work; cancelling that task
(a timeout) cancels the future the cell waits on, as asyncio does.

The loop is the kernel's: opened lazily, in the kernel's nursery, by the first cell that
runs while ``asyncio`` is imported (start-up imports neither asyncio nor trio-asyncio), and
closed at shutdown; asyncio tasks a cell creates keep running after the cell, as they do
in ipykernel. Cancellation (interrupt, ``timeout=``) of a cell waiting on an asyncio future
cancels that future; asyncio code in the cell sees ``asyncio.CancelledError`` and the
cell's cancel scope gets trio's ``Cancelled``. A cell on a trio loop of its own (a
``# thread`` cell, a subshell) gets an asyncio loop of its own, for the cell's duration.
Everything here runs on the loop of the cell (or background task) it drives.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any

import outcome
import trio

from .._transport.loops import KernelNursery

_PACKAGE_DIR = str(Path(__file__).parent.parent)
_MENTIONS_ASYNCIO = re.compile(r"asyncio|\baio")
"""A cell's text that opens the asyncio loop before the cell runs (asyncio, aiohttp...)."""

ASYNCIO_RUN_MESSAGE = (
    "asyncio.run() cannot be used in a trio-kernel cell: the cell already runs on an event loop "
    "(trio, with asyncio available). Await the coroutine instead: `await main()` rather than "
    "`asyncio.run(main())`.")
LATE_IMPORT_NOTE = (
    "asyncio was imported inside this cell, which therefore started without an asyncio loop; "
    "run the cell again (or import asyncio in an earlier cell, or name it in this one).")


class CellTask:
    """What ``asyncio.current_task()`` returns while a step of a driven coroutine runs.

    Only the parts of ``asyncio.Task`` that asyncio's own helpers and common libraries use
    on the current task: cancel requests (``asyncio.timeout``, aiohttp) cancel the future
    the coroutine waits on, or, if it waits on trio, are delivered as ``CancelledError`` at
    its next step.
    """

    def __init__(self, loop: Any, name: str) -> None:
        self._loop = loop
        self._name = name
        self._cancel_requests = 0
        self.waiting_on: Any = None
        self.must_cancel: str | bool | None = False

    def get_loop(self) -> Any:
        return self._loop

    def get_name(self) -> str:
        return self._name

    def done(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def cancel(self, msg: str | None = None) -> bool:
        self._cancel_requests += 1
        if self.waiting_on is not None and self.waiting_on.cancel(msg=msg):
            return True
        self.must_cancel = msg if msg is not None else True
        return True

    def cancelling(self) -> int:
        return self._cancel_requests

    def uncancel(self) -> int:
        if self._cancel_requests > 0:
            self._cancel_requests -= 1
        return self._cancel_requests

    def __repr__(self) -> str:
        return f"<trio-kernel {self._name}>"


@types.coroutine
def _forward(trap: Any) -> Generator[Any, Any, Any]:
    """Yield one trio trap to trio from the driver's frame and return what trio sends back."""
    return (yield trap)


class AsyncioBridge(KernelNursery):
    """The kernel's asyncio loop (trio-asyncio) and the cell coroutine driver.

    ``run`` is started in the kernel's nursery and owns the nursery the loop lives in.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop: Any = None
        self._opening: trio.Event | None = None
        # An application that embeds the kernel has usually imported asyncio already; that
        # alone must not open a loop: importing trio-asyncio changes asyncio for the whole
        # process (its loop policy hands out trio-asyncio loops outside trio too).
        self._asyncio_preloaded = "asyncio" in sys.modules

    @contextlib.asynccontextmanager
    async def cell_scope(self, source: str) -> AsyncIterator[None]:
        """Around a whole cell: its asyncio loop is the running loop of the cell, also of its
        synchronous statements (``asyncio.create_task(...)``).

        On the main shell loop that is the kernel's loop, opened before the first cell that
        runs once ``asyncio`` is imported or whose text speaks of asyncio. A cell on a trio
        loop of its own (a ``# thread`` cell, a subshell) gets a loop of its own, opened and
        closed (its asyncio tasks cancelled) with the cell.
        """
        wanted = self._asyncio_imported() or _MENTIONS_ASYNCIO.search(source) is not None
        if self._token is None or not (wanted or self.loop is not None):
            yield
            return
        import trio_asyncio

        if not self._on_own_loop():
            _forbid_asyncio_run()
            async with trio_asyncio.open_loop():
                yield
            return
        saved = trio_asyncio.current_loop.set(await self._open())
        try:
            yield
        finally:
            trio_asyncio.current_loop.reset(saved)

    def _asyncio_imported(self) -> bool:
        """Whether asyncio was imported since the kernel started (by a cell or a library)."""
        return not self._asyncio_preloaded and "asyncio" in sys.modules

    def _on_own_loop(self) -> bool:
        try:
            return trio.lowlevel.current_trio_token() is self._token
        except RuntimeError:
            return False

    async def _open(self) -> Any:
        """Open the loop once (concurrent callers wait for the first); return it."""
        while self.loop is None:
            if self._opening is not None:
                await self._opening.wait()
                continue
            if self._nursery is None:
                raise RuntimeError("the kernel is shutting down: its asyncio loop is closed")
            self._opening = opening = trio.Event()
            try:
                await self._nursery.start(self._own_loop)
            finally:
                self._opening = None
                opening.set()
        return self.loop

    async def _own_loop(self, *, task_status: trio.TaskStatus[None]) -> None:
        import trio_asyncio

        _forbid_asyncio_run()
        async with trio_asyncio.open_loop() as loop:
            self.loop = loop
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self.loop = None

    async def drive(self, awaitable: Awaitable[Any], name: str = "cell") -> Any:
        """Await ``awaitable`` (a cell's coroutine, a background task's), with asyncio too."""
        if not isinstance(awaitable, Coroutine):
            return await awaitable
        own = self._on_own_loop()
        coro = awaitable
        if own and self.loop is None and self._asyncio_imported():
            try:
                await self._open()  # before the first step: the coroutine holds no scope yet
            except BaseException:
                coro.close()
                raise
        loop: Any = None
        task: CellTask | None = None
        send: Any = None
        throw: BaseException | None = None
        raise_cancel: Any = None
        while True:
            # Between two steps the coroutine may be inside its own cancel scopes, so
            # nothing here awaits: the only checkpoints are the coroutine's own yields.
            if loop is None:
                loop = self.loop if own else _loop_of_this_cell()
                if loop is not None:
                    task = self._become_task(loop, name)
            if task is not None and task.must_cancel is not False and throw is None:
                throw = _cancelled_error(task.must_cancel)
                task.must_cancel = False
            try:
                with _entered(task):
                    yielded = coro.throw(throw) if throw is not None else coro.send(send)
            except StopIteration as stop:
                if raise_cancel is not None:
                    await trio.lowlevel.checkpoint_if_cancelled()
                return stop.value
            except BaseException as exc:
                await self._explain(exc, own)
                if raise_cancel is not None and _is_asyncio_cancel(exc):
                    try:
                        raise_cancel()  # trio's Cancelled for the cell's scope
                    finally:
                        sys.exc_info()[1].__cause__ = exc  # type: ignore[union-attr]
                raise
            send, throw = None, None
            try:
                if yielded is None:  # asyncio.sleep(0): "let the loop run"
                    await trio.lowlevel.checkpoint()
                elif hasattr(type(yielded), "_asyncio_future_blocking"):
                    raise_cancel = await _wait_for_future(yielded, task) or raise_cancel
                else:
                    send = await _forward(yielded)
            except BaseException as exc:
                throw = exc

    def _become_task(self, loop: Any, name: str) -> CellTask:
        """Make the loop current for this trio task and return its stand-in asyncio task."""
        import trio_asyncio

        if trio_asyncio.current_loop.get() is not loop:
            trio_asyncio.current_loop.set(loop)  # this task's context only
        return CellTask(loop, name)

    async def _explain(self, exc: BaseException, own: bool) -> None:
        """Add a note to asyncio's "no running event loop" saying why and what to do."""
        if not (isinstance(exc, RuntimeError) and str(exc) == "no running event loop"):
            return
        if own and "asyncio" in sys.modules:  # a cell asked for the running loop: open it now
            await self._open()
        exc.add_note(LATE_IMPORT_NOTE)


def user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` from its first frame outside the kernel's package: errors of a cell or a
    background task start at the user's code, not at ``run_code`` or this driver."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return tb


def _loop_of_this_cell() -> Any:
    """The asyncio loop ``cell_scope`` opened for a cell on a trio loop of its own, if any."""
    trio_asyncio = sys.modules.get("trio_asyncio")
    return trio_asyncio.current_loop.get() if trio_asyncio is not None else None


@contextlib.contextmanager
def _entered(task: CellTask | None) -> Iterator[None]:
    if task is None:
        yield
        return
    import asyncio

    asyncio.tasks._enter_task(task.get_loop(), task)  # type: ignore[arg-type]  # duck-typed
    try:
        yield
    finally:
        asyncio.tasks._leave_task(task.get_loop(), task)  # type: ignore[arg-type]


async def _wait_for_future(future: Any, task: CellTask | None) -> Any:
    """Wait (in trio) until an asyncio future is done; the coroutine then reads its result.

    A trio cancellation cancels the future and keeps waiting for it to settle, so the
    coroutine sees ``CancelledError`` the asyncio way; the function that raises trio's
    ``Cancelled`` is returned for the driver to raise once the coroutine gave up.
    """
    future._asyncio_future_blocking = False
    if future.done():
        await trio.lowlevel.cancel_shielded_checkpoint()
        return None
    me = trio.lowlevel.current_task()
    raise_cancel = None

    def wake(_: Any) -> None:
        trio.lowlevel.reschedule(me, outcome.Value(None))

    def abort(raiser: Any) -> trio.lowlevel.Abort:
        nonlocal raise_cancel
        raise_cancel = raiser
        future.cancel()
        return trio.lowlevel.Abort.FAILED

    future.add_done_callback(wake)
    if task is not None:
        task.waiting_on = future
    try:
        await trio.lowlevel.wait_task_rescheduled(abort)
    finally:
        if task is not None:
            task.waiting_on = None
    return raise_cancel


def _cancelled_error(msg: str | bool | None) -> BaseException:
    import asyncio

    return asyncio.CancelledError(msg) if isinstance(msg, str) else asyncio.CancelledError()


def _is_asyncio_cancel(exc: BaseException) -> bool:
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _forbid_asyncio_run() -> None:
    """Make ``asyncio.run()`` inside trio (a cell) fail with a message that says what to do.

    Outside trio (a library's own thread) it is asyncio's ``run``, unchanged.
    """
    import asyncio

    original = asyncio.run
    if getattr(original, "_trio_kernel_guard", False):
        return

    def run(main: Any, **kwargs: Any) -> Any:
        if trio.lowlevel.in_trio_run():
            if hasattr(main, "close"):
                main.close()  # no "coroutine was never awaited" warning on top of the error
            raise RuntimeError(ASYNCIO_RUN_MESSAGE)
        return original(main, **kwargs)

    run._trio_kernel_guard = True  # type: ignore[attr-defined]
    run.__doc__ = original.__doc__
    asyncio.run = asyncio.runners.run = run
