"""``background``: trio tasks that outlive the cell that started them.

A cell that starts a server, a poller or a stream must end (so the kernel goes idle and
nbclient moves on) while the task keeps running. ``nursery.start_soon`` in a cell cannot do
that: the cell's nursery waits for its children. So the kernel owns one more nursery, for
its whole life, and exposes it to cells as ``background``, a nursery-like handle.

Each task runs in a cancel scope of its own inside that nursery, on the main shell loop,
with the starting cell in its context (``_cell.current_cell``): its ``print``, ``display``
and errors go to that cell's parent header. A task that raises is reported as an ``error``
output of that cell and logged; it never reaches the nursery, so the kernel and the other
tasks go on. Interrupt stops cells, not these tasks; ``%tasks cancel`` and shutdown
(``aclose``) stop them. Everything here runs on the main shell loop.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio
from IPython.core.error import UsageError

from .._core.wire import Outgoing
from .._shell.asyncio_bridge import user_traceback
from .._shell.cell import Cell, current_cell
from .._shell.shell import is_cancellation
from .._transport.loops import KernelNursery

if TYPE_CHECKING:
    from .._shell.shell import TrioShell

log = logging.getLogger("kernel.background")

KEPT_FINISHED = 100
"""Finished tasks ``%tasks`` still lists (the oldest are forgotten first)."""


@attrs.define(eq=False)
class BackgroundTask:
    """One background task: what ``%tasks`` shows, and its cancel scope."""

    id: int
    name: str
    execution_count: int | None
    started_at: float
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    state: str = "running"
    """``running``, then ``done``, ``failed`` or ``cancelled``."""
    ended_at: float | None = None

    def cancel(self) -> None:
        """Cancel the task through its cancel scope (its ``finally`` blocks run)."""
        self.scope.cancel()

    def age(self, now: float) -> float:
        return (self.ended_at if self.ended_at is not None else now) - self.started_at

    def __repr__(self) -> str:
        return f"<background task {self.id} {self.name!r} {self.state}>"


class _StartedFlag:
    """A ``task_status`` that remembers whether ``started()`` was called."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: Any = None) -> None:
        self.called = True
        self._inner.started(value)


class BackgroundTasks(KernelNursery):
    """The ``background`` object of the user namespace (one per kernel).

    ``run`` (started in the kernel's nursery) owns the nursery the tasks live in; the
    ``drive`` function wraps each task's coroutine (the asyncio bridge's trampoline, so a
    background task may await asyncio as a cell can).
    """

    def __init__(self, shell: TrioShell,
                 drive: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None) -> None:
        self._shell = shell
        self._drive = drive
        super().__init__()
        self._ids = itertools.count(1)
        self._tasks: dict[int, BackgroundTask] = {}
        self._finished: collections.deque[int] = collections.deque()
        self._all_done = trio.Event()
        self._all_done.set()

    def install(self, shell: TrioShell) -> None:
        """Put ``background`` in the user namespace (unless the application's namespace
        already has that name), again after ``%reset``, and register ``%tasks``."""
        if "background" not in shell.user_ns:
            shell.push({"background": self}, interactive=False)
        init_user_ns = shell.init_user_ns

        def init_user_ns_with_background() -> None:  # what %reset calls once it cleared
            init_user_ns()
            shell.push({"background": self}, interactive=False)

        shell.init_user_ns = init_user_ns_with_background  # type: ignore[method-assign]
        shell.register_magic_function(self.magic, "line", "tasks")  # type: ignore[arg-type]

    # -- the nursery-like API used in cells ------------------------------------------

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> BackgroundTask:
        """Start ``await fn(*args)`` as a background task; return its handle at once."""
        nursery, task = self._new(fn, name)
        nursery.start_soon(self._run_task, task, current_cell.get(), fn, args, None, name=task.name)
        return task

    async def start(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> Any:
        """Like ``nursery.start``: wait until ``fn`` calls ``task_status.started(value)``, return
        ``value``; the task then goes on in the background. An error before ``started()``
        is raised here, in the cell."""
        nursery, task = self._new(fn, name)
        return await nursery.start(self._run_task, task, current_cell.get(), fn, args, name=task.name)

    @property
    def tasks(self) -> list[BackgroundTask]:
        """Every task still running and the latest finished ones, oldest first."""
        return list(self._tasks.values())

    def cancel(self, which: str) -> list[BackgroundTask]:
        """Cancel the tasks ``which`` names: an id, a name, or ``all``; return them."""
        chosen = [t for t in self._tasks.values() if t.state == "running"
                  and (which == "all" or str(t.id) == which or t.name == which)]
        for task in chosen:
            task.cancel()
        return chosen

    def __repr__(self) -> str:
        running = sum(t.state == "running" for t in self._tasks.values())
        return f"<background: {running} running task(s); %tasks lists them>"

    # -- shutdown ---------------------------------------------------------------------

    async def aclose(self, grace: float = 2.0) -> None:
        """Cancel every task and wait up to ``grace`` seconds for their ``finally`` blocks.

        Called (shielded) by the kernel at shutdown and restart, before the sockets close,
        so output of the tasks' cleanup still reaches the frontend.
        """
        for task in self._tasks.values():
            task.cancel()
        with trio.move_on_after(grace) as waited:
            await self._all_done.wait()
        if waited.cancelled_caught:
            log.warning("background tasks still running %.1f s after shutdown cancelled them: %s",
                        grace, [t.name for t in self._tasks.values() if t.state == "running"])

    # -- internals --------------------------------------------------------------------

    def _new(self, fn: Callable[..., Awaitable[Any]], name: str | None) -> tuple[trio.Nursery, BackgroundTask]:
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError("the kernel's background nursery is closed (the kernel is shutting down)")
        if trio.lowlevel.current_trio_token() is not self._token:
            raise RuntimeError(
                "background tasks start from cells on the main shell loop (queue, task and "
                "blocking cells); this cell runs on a trio loop of its own (a `# thread` cell "
                "or a subshell). Start the task from a queue or task cell.")
        if not callable(fn):
            raise TypeError(f"background.start_soon expects an async function, got {fn!r}")
        cell = current_cell.get()
        task = BackgroundTask(
            id=next(self._ids),
            name=name or getattr(fn, "__qualname__", None) or repr(fn),
            execution_count=cell.execution_count if cell is not None and not cell.silent else None,
            started_at=time.monotonic(),
        )
        self._tasks[task.id] = task
        if self._all_done.is_set():
            self._all_done = trio.Event()
        return nursery, task

    @trio.lowlevel.enable_ki_protection
    async def _run_task(self, task: BackgroundTask, cell: Cell | None, fn: Callable[..., Awaitable[Any]],
                        args: tuple[Any, ...], task_status: trio.TaskStatus[Any] | None = None) -> None:
        """Run one task; its errors are reported, never raised into the nursery.

        KeyboardInterrupt-protected like the rest of the kernel: an interrupt escalated
        for a blocking cell must not land in a background task.
        """
        status = _StartedFlag(task_status) if task_status is not None else None
        try:
            with task.scope:
                coro = fn(*args) if status is None else fn(*args, task_status=status)
                await (self._drive(coro) if self._drive is not None else coro)
            task.state = "cancelled" if task.scope.cancelled_caught else "done"
        except BaseException as exc:
            if is_cancellation(exc):
                task.state = "cancelled"
                raise  # an outer scope's cancellation (the kernel is shutting down)
            task.state = "failed"
            if status is not None and not status.called:
                raise  # ``await background.start(...)``: the starting cell gets the error
            self._report(task, cell, exc)
        finally:
            self._finish(task)

    def _finish(self, task: BackgroundTask) -> None:
        task.ended_at = time.monotonic()
        self._finished.append(task.id)
        while len(self._finished) > KEPT_FINISHED:
            self._tasks.pop(self._finished.popleft(), None)
        if not any(t.state == "running" for t in self._tasks.values()):
            self._all_done.set()

    @trio.lowlevel.enable_ki_protection
    def _report(self, task: BackgroundTask, cell: Cell | None, exc: BaseException) -> None:
        """Log the error and show it as an ``error`` output of the starting cell.

        The cell's own ``error`` (its reply) is left alone: a task failing while its cell
        still runs must not fail that cell.
        """
        log.error("background task %d %r failed", task.id, task.name, exc_info=exc)
        if cell is None:
            return
        if isinstance(exc, BaseExceptionGroup):
            stb = traceback.format_exception(exc)
        else:
            stb = self._shell.InteractiveTB.structured_traceback(type(exc), exc, user_traceback(exc.__traceback__))
        header = f"background task {task.id} ({task.name!r}) failed:"
        content = {"ename": type(exc).__name__, "evalue": str(exc), "traceback": [header, *stb]}
        cell.iopub.put(Outgoing("error", content, cell.parent))

    # -- %tasks -------------------------------------------------------------------------

    def magic(self, line: str) -> None:
        """%tasks: list background tasks; %tasks cancel ID|NAME|all: cancel them."""
        words = line.split()
        if not words:
            print(self.table())
            return
        if words[0] != "cancel" or len(words) != 2:
            raise UsageError("usage: %tasks  |  %tasks cancel ID|NAME|all")
        cancelled = self.cancel(words[1])
        if not cancelled and words[1] != "all":
            raise UsageError(f"no running background task with id or name {words[1]!r}")
        print(f"cancelled {len(cancelled)} task(s)" + "".join(f"\n  {t.id} {t.name}" for t in cancelled))

    def table(self) -> str:
        """The text ``%tasks`` prints."""
        tasks = self.tasks
        if not tasks:
            return "no background tasks"
        now = time.monotonic()
        rows = [("id", "name", "cell", "age", "state")]
        rows += [(str(t.id), t.name, "-" if t.execution_count is None else f"In[{t.execution_count}]",
                  _age(t.age(now)), t.state) for t in tasks]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                         for row in rows)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"

