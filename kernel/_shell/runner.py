"""The shell runner: carries out what one shell's policy decides, and runs the cells.

One runner per shell (the main shell, each subshell). The I/O loop routes a request once
(``_core.routing``: handler, run mode, cell options) and hands it over with ``submit``; the
runner feeds the shell's ``ShellPolicy`` (pure, ``_core.policy``) and carries out the
actions it returns:

- ``Start`` of a queue/task/blocking request: a task in the runner's cell nursery, on the
  shell's trio loop (the main thread for the main shell, the subshell's thread otherwise);
- ``Start`` of a thread request: a worker thread owned by the I/O loop, with a trio loop of
  its own (``Services.spawn_thread``), so a thread cell starts while user code blocks the
  shell's thread;
- ``Abort``: an ``aborted`` reply, from whichever thread decided it;
- ``Cancel``: the cell's cancel scope, on the cell's loop.

When a request ends, ``Finished`` goes back to the policy (from the loop it ran on), whose
answer starts the next queued request. Policy calls are serialised by a lock, and the
actions are carried out under it, so they happen in the order the policy chose.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .._control.interrupt import RunningCell
from .._core import replies as _replies
from .._core.cellmode import CellOptions
from .._core.enums import RunMode
from .._core.policy import Abort, Action, Arrived, Cancel, Event, Failed, Finished, ShellPolicy, Start
from .._core.routing import Handler, Row
from .._core.wire import Message
from .._shell.cell import Cell, current_cell
from .._shell.comms import CommManager, activate
from .._shell.execution import forget_old_tracebacks, run_in_ipython
from .._shell.services import Services
from .._shell.shell import TrioShell
from .._transport.loops import Room, call_soon

log = logging.getLogger("kernel.runner")

INBOX_ITEMS = 1000
"""Requests that may wait for their turn on one shell before the I/O loop stops reading."""
INBOX_BYTES = 16 * 1024 * 1024
"""Bytes of waiting requests on one shell before the I/O loop stops reading its socket."""


@attrs.define(eq=False)
class Request:
    """A request routed by the I/O loop, on its way through one shell."""

    id: int
    msg: Message
    row: Row
    options: CellOptions
    """``options.mode`` is the route's ``how``: the cell's mode for execute requests."""
    size: int = 0
    """Its size on the wire, counted against the shell's inbox ``Room``."""
    running: RunningCell | None = None
    busy_sent: bool = False
    failed: bool = False
    replied: bool = False
    idle_sent: bool = False


class ShellRunner:
    """Runs the requests of one shell; see the module docstring for who calls what where."""

    def __init__(self, shell: TrioShell, services: Services, comms: CommManager,
                 subshell_id: str | None = None) -> None:
        self.shell = shell
        self.services = services
        self.comms = comms
        self.subshell_id = subshell_id
        self.room = Room(services.io_token, INBOX_ITEMS, INBOX_BYTES)
        self._policy = ShellPolicy()
        self._lock = threading.Lock()
        self._requests: dict[int, Request] = {}
        self._running: set[RunningCell] = set()
        self._running_lock = threading.Lock()
        self._scope = trio.CancelScope()
        self._cells: trio.Nursery | None = None
        self._waker = services.iopub.waker
        self._loop_thread: int | None = None
        self.token: trio.lowlevel.TrioToken | None = None

    # -- the I/O side ------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """Take a routed request (on the I/O loop, once it has taken its ``room``)."""
        msg = request.msg
        execute = request.row.handler is Handler.EXECUTE
        cancel = execute and bool(msg.content.get("stop_on_error", True)) and not msg.content.get("silent", False)
        with self._lock:
            self._requests[request.id] = request
            self._feed(Arrived(request.id, request.options.mode, execute, cancel))

    def stop_threadsafe(self) -> None:
        """End ``run`` (from any thread); running cells should be stopped first."""
        if self.token is not None:
            call_soon(self.token, self._scope.cancel)

    def running_cells(self, include_silent: bool = False) -> list[RunningCell]:
        """A snapshot of the running cells (read from the I/O thread)."""
        with self._running_lock:
            return [c for c in self._running if include_silent or not c.silent]

    # -- policy and actions (any thread, under the lock) -------------------------------

    def _feed(self, event: Event) -> None:
        for action in self._policy.handle(event):
            self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        request = self._requests[action.request_id]
        if isinstance(action, Start):
            self.room.release(request.size)
            if action.mode is RunMode.THREAD:
                self.services.spawn_thread(functools.partial(self._thread_cell, request),
                                           f"thread cell {request.msg.msg_id}")
            elif self._loop_thread == threading.get_ident() and self._cells is not None:
                # Decided on the shell's own loop (the request before it finished): start
                # it directly; a call_soon to its own loop would cost a wake-up syscall.
                self._cells.start_soon(self.serve, request)
            elif self.token is None or not call_soon(self.token, self._start_on_loop, request):
                self._requests.pop(request.id)
                log.error("%s for a shell that has stopped", request.msg.msg_type)
        elif isinstance(action, Abort):
            self.room.release(request.size)
            self._requests.pop(request.id)
            self._answer_aborted(request)
        elif isinstance(action, Cancel):
            running = request.running
            if running is not None and not running.finished:
                running.reason = running.reason or "interrupt"
                call_soon(running.token, running.scope.cancel)

    def _failed(self, request: Request) -> None:
        """The request failed: stop_on_error applies now, before its reply goes out."""
        if request.failed or not request.msg.content.get("stop_on_error", True):
            return
        request.failed = True
        with self._lock:
            self._feed(Failed(request.id))

    def _finished(self, request: Request) -> None:
        """The request has been answered (from the loop it ran on)."""
        with self._lock:
            if self._requests.pop(request.id, None) is not None:
                self._feed(Finished(request.id))

    # -- the shell loop ----------------------------------------------------------------

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
        """Own the cell nursery of this shell until cancelled."""
        self.token = trio.lowlevel.current_trio_token()
        activate(self.comms)
        with self._scope:
            async with trio.open_nursery() as cells:
                self._cells = cells
                self._loop_thread = threading.get_ident()
                task_status.started()
                try:
                    await trio.sleep_forever()
                finally:
                    self._loop_thread = None

    def _start_on_loop(self, request: Request) -> None:
        assert self._cells is not None, "started before run()"
        self._cells.start_soon(self.serve, request)

    def _thread_cell(self, request: Request) -> None:
        """Body of a thread cell's worker thread: its own trio loop, then the last word.

        Whatever ends ``trio.run`` (an asynchronous KeyboardInterrupt that reached the
        worker between the cell's end and its loop's), the request is answered and leaves
        the policy exactly once.
        """
        try:
            trio.run(self.serve, request)
        except BaseException as exc:
            log.warning("thread cell ended with %r outside its code", exc)
            self._answer_failure(request, exc)
            self._finished(request)

    @trio.lowlevel.enable_ki_protection
    async def serve(self, request: Request) -> None:
        """Serve one started request on this loop: every request is answered, whatever
        happens, and reported to the policy once; only the runner's own cancellation
        (shutdown) propagates.

        The kernel's own code here holds its wake-ups of the I/O loop (busy and
        execute_input, then reply and idle, each pair with one wake-up); user code (the
        cell, comm handlers, user expressions) runs ``released``, so its output and the
        busy before it go out at once even if it blocks.
        """
        with self._waker.holding():
            try:
                self._busy(request)  # every request a shell serves is busy from here
                handler = request.row.handler
                if handler is Handler.EXECUTE:
                    await self._execute(request)
                elif handler is Handler.COMM:
                    self._comm(request)
                else:
                    self._unknown(request)
            except BaseException as exc:
                self._answer_failure(request, exc)
                if isinstance(exc, trio.Cancelled) and trio.current_effective_deadline() == -math.inf:
                    raise  # this loop is being shut down
                log.error("serving %s failed", request.msg.msg_type, exc_info=exc)
            finally:
                if request.running is not None:
                    self._unregister(request.running)
                self._finished(request)

    # -- answers -----------------------------------------------------------------------

    def _busy(self, request: Request) -> None:
        request.busy_sent = True
        self.services.busy(request.msg.header)

    def _idle(self, request: Request) -> None:
        request.idle_sent = True
        self.services.idle(request.msg.header)

    def _reply(self, request: Request, content: dict[str, Any]) -> None:
        msg, reply_type = request.msg, request.row.reply
        assert reply_type is not None
        self.services.reply(msg.channel, reply_type, content, msg.header, msg.idents,
                            metadata={"status": content["status"]})
        request.replied = True  # only once it is queued: serialising it may fail

    def _answer_aborted(self, request: Request) -> None:
        self._busy(request)
        self._reply(request, {**_replies.aborted_reply(), "execution_count": self.shell.execution_count})
        self._idle(request)

    def _answer_failure(self, request: Request, exc: BaseException) -> None:
        """What a request still lacks after its handler failed: busy, an error reply, idle."""
        if not request.busy_sent:
            self._busy(request)
        if request.row.reply is not None and not request.replied:
            if request.row.handler is Handler.EXECUTE:
                self._failed(request)
            content = {"status": "error",
                       **_replies.error_content(type(exc).__name__, f"the kernel failed to run this: {exc}", [])}
            if request.row.handler is Handler.EXECUTE:
                content["execution_count"] = self.shell.execution_count
            self._reply(request, content)
        if not request.idle_sent:
            self._idle(request)

    def _comm(self, request: Request) -> None:
        with self._waker.released():  # comm handlers are user code
            self.comms.receive(request.msg)
        self._idle(request)

    def _unknown(self, request: Request) -> None:
        """Busy, an error log and idle, and no reply: what the spec asks and ipykernel does."""
        log.error("unknown message type %r on %s: no reply", request.msg.msg_type, request.msg.channel)
        self._idle(request)

    # -- execute -----------------------------------------------------------------------

    async def _execute(self, request: Request) -> None:
        """Run an execute request and answer it."""
        code = request.msg.content.get("code")
        if not isinstance(code, str):
            reply = _replies.bad_request("execute_request", "'code' must be a string")
        else:
            reply = await self._execute_code(request, code)
        reply.setdefault("execution_count", self.shell.execution_count)
        self._reply(request, reply)
        self._idle(request)

    async def _execute_code(self, request: Request, code: str) -> dict[str, Any]:
        msg, options = request.msg, request.options
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
            comms=self.comms,
        )
        context_token = current_cell.set(cell)
        try:
            if options.mode is RunMode.QUEUE:
                self.services.latest_cell.cell = cell
            if not silent:
                self.services.publish(
                    "execute_input", {"code": code, "execution_count": cell.execution_count}, msg.header
                )
            await self._run_cell(request, cell, code, store_history, silent)
            with self._waker.released():  # user expressions are user code
                user_expressions = self._user_expressions(content.get("user_expressions"))
        finally:
            current_cell.reset(context_token)
        if silent or not store_history:
            cell.execution_count = shell.execution_count
        elif cell.error is not None:
            forget_old_tracebacks(shell)
        error = None if options.raises_exception and cell.error else cell.error
        if error is not None:
            self._failed(request)
        return _replies.execute_reply(
            execution_count=cell.execution_count,
            error=error,
            suppress_error=options.suppress_error,
            user_expressions=user_expressions,
            payload=cell.payload,
        )

    async def _run_cell(self, request: Request, cell: Cell, code: str, store_history: bool,
                        silent: bool) -> None:
        """Run the cell in its own cancel scope, registered for interrupt and timeout."""
        timeout = request.options.timeout
        running = RunningCell(
            scope=trio.CancelScope(),
            token=trio.lowlevel.current_trio_token(),
            thread_id=threading.get_ident(),
            silent=silent,
            stop_on_error=bool(cell.parent_content.get("stop_on_error", True)),
            timeout=timeout,
        )
        cell.running = request.running = running
        with self._running_lock:
            self._running.add(running)
        if timeout is not None:
            self.services.watch_deadline(running, timeout)
        result = None
        try:
            with running.scope, self._waker.released():
                result = await run_in_ipython(self.shell, code, store_history, silent)
        finally:
            self._unregister(running)
        failure = result.error_before_exec or result.error_in_exec if result is not None else None
        if cell.error is None and failure is not None:
            # An error IPython reported without a traceback (e.g. printed to stderr).
            cell.error = _replies.error_content(type(failure).__name__, str(failure), [])
        if running.scope.cancelled_caught:
            # Cancelled while awaiting: nothing was raised in user code, so say why here.
            # (Blocking code stopped by a KeyboardInterrupt was reported by the shell,
            # as a TimeoutError when that is what stopped it.)
            error = (_replies.timeout_error(timeout or 0.0) if running.reason == "timeout"
                     else _replies.interrupted_error())
            cell.error = error
            self.services.publish("error", error, cell.parent)

    def _unregister(self, running: RunningCell) -> None:
        """The cell no longer runs: interrupt and timeouts leave it alone (idempotent)."""
        if running.finished:
            return
        running.finished = True
        with self._running_lock:
            self._running.discard(running)
        if running.watcher is not None:
            call_soon(self.services.io_token, running.watcher.cancel)

    def _user_expressions(self, expressions: Any) -> dict[str, Any]:
        if not isinstance(expressions, dict) or not expressions:
            return {}
        return dict(self.shell.user_expressions(expressions))
