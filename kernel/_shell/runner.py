"""A shell runner: the loop that owns the user namespace and runs requests in their mode.

One runner per shell: the main shell's runs on the caller's trio loop (the main thread for
``python -m kernel``), each subshell's on a thread of its own. The I/O loop hands it
requests with ``submit`` (thread-safe); its ``run`` task is the dispatcher for that shell::

    ShellRunner.run                      (dispatcher: applies the run-mode table)
    ├── _run_queue                       (queue: one request at a time, arrival order)
    ├── handle(...)  for task requests   (task: started at once in the cell nursery)
    └── handle_in_thread(...)            (thread: a worker thread with its own trio loop)

``blocking`` requests are handled inside the dispatcher itself, after the queue drains,
so nothing else on this shell starts until they end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import trio
from IPython.core.interactiveshell import ExecutionResult

from .._control.interrupt import RunningCell
from .._core import replies as _replies
from .._core.cellmode import CellOptions, cell_options
from .._core.enums import RunMode
from .._core.routing import route
from .._core.wire import Message
from .._shell.cell import Cell, current_cell, set_orphan_cell
from .._shell.comms import CommManager, activate
from .._shell.services import Services
from .._shell.shell import TrioShell

log = logging.getLogger("kernel.runner")


class ShellRunner:
    """Runs the requests of one shell on one trio loop."""

    def __init__(self, shell: TrioShell, services: Services, comms: CommManager,
                 subshell_id: str | None = None) -> None:
        self.shell = shell
        self.services = services
        self.comms = comms
        self.subshell_id = subshell_id
        self._running: set[RunningCell] = set()
        self._running_lock = threading.Lock()
        self._scope = trio.CancelScope()
        self.abort_before = -math.inf
        self.token: trio.lowlevel.TrioToken | None = None
        self._inbox_send, self._inbox = trio.open_memory_channel[Message](math.inf)
        self._queue_send, self._queue = trio.open_memory_channel[tuple[Message, CellOptions]](math.inf)
        self._queue_idle = trio.Event()
        self._queue_idle.set()
        self._queued = 0

    def submit(self, msg: Message) -> None:
        """Hand a request to this runner; safe from any thread once ``run`` started."""
        assert self.token is not None, "runner not started"
        self.token.run_sync_soon(self._inbox_send.send_nowait, msg)

    def stop_threadsafe(self) -> None:
        """End ``run`` (from any thread); running cells should be stopped first."""
        if self.token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self._scope.cancel)

    def running_cells(self, include_silent: bool = False) -> list[RunningCell]:
        """A snapshot of the running cells (read from the I/O thread)."""
        with self._running_lock:
            return [c for c in self._running if include_silent or not c.silent]

    @property
    def default_mode(self) -> RunMode:
        """The mode of cells that name none: ``%runmode`` changes it at run time."""
        return self.shell.default_run_mode

    def run_in_own_loop(self, on_ready: Callable[[], None]) -> None:
        """Thread body of a subshell: a trio loop that runs this runner until stopped."""

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run)
                on_ready()

        trio.run(main)

    @trio.lowlevel.enable_ki_protection
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Dispatch requests until cancelled."""
        self.token = trio.lowlevel.current_trio_token()
        activate(self.comms)
        with self._scope:
            await self._dispatch(task_status)

    async def _dispatch(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as cells:
            cells.start_soon(self._run_queue)
            task_status.started()
            async for msg in self._inbox:
                options = self._options(msg)
                how = route(msg.msg_type, msg.channel, options.mode).how
                if how is RunMode.TASK:
                    cells.start_soon(self.handle, msg, options)
                elif how is RunMode.THREAD:
                    cells.start_soon(self.handle_in_thread, msg, options)
                elif how is RunMode.BLOCKING:
                    await self._queue_idle.wait()
                    await self.handle(msg, options)
                else:
                    self._queued += 1
                    self._queue_idle = trio.Event() if self._queue_idle.is_set() else self._queue_idle
                    self._queue_send.send_nowait((msg, options))

    def _options(self, msg: Message) -> CellOptions:
        if msg.msg_type != "execute_request":
            return CellOptions(mode=RunMode.QUEUE)
        code = msg.content.get("code")
        return cell_options(
            code if isinstance(code, str) else "",
            msg.metadata,
            self.default_mode,
            silent=bool(msg.content.get("silent", False)),
            default_timeout=self.services.default_timeout,
        )

    async def _run_queue(self) -> None:
        async for msg, options in self._queue:
            await self.handle(msg, options, queued=True)
            self._queued -= 1
            if self._queued == 0:
                self._queue_idle.set()

    @trio.lowlevel.enable_ki_protection
    async def handle(self, msg: Message, options: CellOptions, queued: bool = False) -> None:
        """Serve one request on this loop; never raises (errors become replies and logs)."""
        try:
            if msg.msg_type == "execute_request":
                await self.execute(msg, options, queued=queued)
            elif msg.msg_type in ("comm_open", "comm_msg", "comm_close"):
                self._comm(msg)
            else:
                log.error("unknown message type %r on %s: no reply", msg.msg_type, msg.channel)
        except Exception:
            log.exception("handling %s failed", msg.msg_type)

    async def handle_in_thread(self, msg: Message, options: CellOptions) -> None:
        """Run an execute request in a worker thread with its own trio loop.

        Interrupt and timeout stop the cell inside its thread (``_interrupt``). This task is
        cancelled only when the kernel shuts down, after the cell was already asked to stop;
        a cell still blocked then (one long C call) is abandoned rather than left to hang the
        shutdown: the thread is a daemon, and ends with the process.
        """
        try:
            await trio.to_thread.run_sync(trio.run, self.handle, msg, options, abandon_on_cancel=True)
        except (Exception, KeyboardInterrupt) as exc:
            # An asynchronous KeyboardInterrupt that reached the worker between the cell's
            # end and its loop's: the cell is over; the kernel must not be.
            log.warning("thread cell ended with %r outside its code", exc)

    def _comm(self, msg: Message) -> None:
        self.services.busy(msg.header)
        try:
            self.comms.receive(msg)
        finally:
            self.services.idle(msg.header)

    async def execute(self, msg: Message, options: CellOptions, queued: bool) -> None:
        services = self.services
        content = msg.content
        services.busy(msg.header)
        try:
            code = content.get("code")
            if not isinstance(code, str):
                reply = _replies.bad_request("execute_request", "'code' must be a string")
            elif msg.received_at <= self.abort_before:
                reply = _replies.aborted_reply()
            else:
                reply = await self._execute_code(msg, code, options, queued)
            reply.setdefault("execution_count", self.shell.execution_count)
            services.reply(msg.channel, "execute_reply", reply, msg.header, msg.idents,
                           metadata={"status": reply["status"]})
        finally:
            services.idle(msg.header)

    async def _execute_code(self, msg: Message, code: str, options: CellOptions,
                            queued: bool) -> dict[str, Any]:
        content = msg.content
        shell = self.shell
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent)) and not silent
        cell = Cell(
            parent=msg.header,
            iopub=self.services.iopub,
            idents=msg.idents,
            parent_content=content,
            execution_count=shell.execution_count,
            silent=silent,
            allow_stdin=bool(content.get("allow_stdin", False)),
            stdin_request=self.services.stdin_request,
        )
        context_token = current_cell.set(cell)
        try:
            if queued:
                set_orphan_cell(cell)
            if not silent:
                self.services.publish(
                    "execute_input", {"code": code, "execution_count": cell.execution_count}, msg.header
                )
            await self._run_cell(cell, code, store_history, silent, options)
            user_expressions = self._user_expressions(content.get("user_expressions"))
        finally:
            current_cell.reset(context_token)
        if silent or not store_history:
            cell.execution_count = shell.execution_count
        elif cell.error is not None:
            _forget_old_tracebacks(shell)
        payload = shell.payload_manager.read_payload()
        shell.payload_manager.clear_payload()
        error = None if options.raises_exception and cell.error else cell.error
        if error is not None and content.get("stop_on_error", True):
            self.abort_before = time.monotonic()
            self._stop_tasks_on_error()
        return _replies.execute_reply(
            execution_count=cell.execution_count,
            error=error,
            suppress_error=options.suppress_error,
            user_expressions=user_expressions,
            payload=payload,
        )

    async def _run_cell(self, cell: Cell, code: str, store_history: bool, silent: bool,
                        options: CellOptions) -> None:
        """Run the cell in its own cancel scope, registered for interrupt and timeout."""
        running = RunningCell(
            scope=trio.CancelScope(),
            token=trio.lowlevel.current_trio_token(),
            thread_id=threading.get_ident(),
            silent=silent,
            stop_on_error=bool(cell.parent_content.get("stop_on_error", True)),
            timeout=options.timeout,
        )
        cell.running = running
        with self._running_lock:
            self._running.add(running)
        if options.timeout is not None:
            self.services.watch_deadline(running, options.timeout)
        result = None
        try:
            with running.scope:
                result = await self._run_in_ipython(code, store_history, silent)
        finally:
            running.finished = True
            with self._running_lock:
                self._running.discard(running)
            if running.watcher is not None:
                self.services.io_token.run_sync_soon(running.watcher.cancel)
        failure = result.error_before_exec or result.error_in_exec if result is not None else None
        if cell.error is None and failure is not None:
            # An error IPython reported without a traceback (e.g. printed to stderr).
            cell.error = _replies.error_content(type(failure).__name__, str(failure), [])
        if running.scope.cancelled_caught:
            # Cancelled while awaiting: nothing was raised in user code, so say why here.
            # (Blocking code stopped by a KeyboardInterrupt was reported by the shell,
            # as a TimeoutError when that is what stopped it.)
            error = (_replies.timeout_error(options.timeout or 0.0) if running.reason == "timeout"
                     else _replies.interrupted_error())
            cell.error = error
            self.services.publish("error", error, cell.parent)

    async def _run_in_ipython(self, code: str, store_history: bool, silent: bool) -> ExecutionResult:
        """IPython's cell pipeline, plus the post-execute events it leaves to its caller.

        A trio cancellation that ``TrioShell.run_code`` kept off IPython's error path is
        raised again here, so that the cell's cancel scope sees it.
        """
        shell = self.shell
        try:
            transformed, preprocessing_exc = shell.transform_cell(code), None
        except Exception:
            transformed, preprocessing_exc = code, sys.exc_info()
        result = None
        try:
            result = await shell.run_cell_async(
                code,
                store_history=store_history,
                silent=silent,
                transformed_cell=transformed,
                preprocessing_exc_tuple=preprocessing_exc,
            )
        finally:
            shell.events.trigger("post_execute")
            if not silent:
                shell.events.trigger("post_run_cell", result)
        cancelled = getattr(result, "trio_cancelled", None)
        if cancelled is not None:
            raise cancelled
        return result

    def _user_expressions(self, expressions: Any) -> dict[str, Any]:
        if not isinstance(expressions, dict) or not expressions:
            return {}
        return self.shell.user_expressions(expressions)

    def _stop_tasks_on_error(self) -> None:
        """``stop_on_error``: cancel the running cells of this loop that asked for it.

        Cells on other loops (thread cells) are left alone: their scopes belong to another
        thread and an error in one cell is no reason to interrupt blocking work elsewhere.
        """
        token = trio.lowlevel.current_trio_token()
        for running in self.running_cells():
            if running.stop_on_error and running.token is token and not running.finished:
                running.reason = running.reason or "interrupt"
                running.scope.cancel()


KEPT_TRACEBACKS = 1000
"""Formatted tracebacks IPython keeps for ``%notebook`` export (each several KB)."""


def _forget_old_tracebacks(shell: TrioShell) -> None:
    """IPython stores a formatted traceback for every failed cell and never drops one;
    keep the newest ``KEPT_TRACEBACKS`` so that a long session's memory stays bounded."""
    stored = getattr(shell.history_manager, "exceptions", None)
    if isinstance(stored, dict) and len(stored) > KEPT_TRACEBACKS:
        for count in sorted(stored)[: len(stored) - KEPT_TRACEBACKS]:
            del stored[count]
