"""The I/O thread: owns every Jupyter socket, routes each request once, and answers what
must never wait for user code.

It runs its own trio loop, so it keeps serving while a cell holds a shell's thread (see the
nursery tree in ``_app.kernel``). For each request it looks up the dispatch table
(``_core.routing``) once: the row says which handler serves it, on which loop and how;
for an execute request the cell's options (``_core.cellmode``, pure) are parsed here too,
and the resulting ``Request`` travels to its shell's runner, which needs nothing else.

Shell and control each have their own lane (``_Lane``). A request that finds its lane
empty is routed at once, in the socket task's own step: served on the I/O loop, or handed
to its shell if that shell has room (this is the path of nearly every request, and it costs
no task switch). Otherwise it waits in the lane, in arrival order, and the lane's task
routes it once those before it have gone and its shell has room. When a lane holds
``LANE_BUFFER`` requests its socket is no longer read, and zmq's high-water mark pushes back
on the client; the control lane, and with it interrupt and shutdown, keeps going.

Socket tasks decode and verify each message as it arrives and drop, with a log line, any
that is malformed or badly signed; the dispatcher sees only ``Message`` objects.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio
import zmq

from .._control import usage as _usage
from .._control.interrupt import Interrupter, RunningCell
from .._core import replies as _replies
from .._core.cellmode import CellOptions, cell_options
from .._core.enums import Channel, RunMode, Where
from .._core.routing import Handler, Row, lookup
from .._core.wire import Message, Outgoing, WireError, WireSession, decode, encode, freeze, make_header
from .._shell.stdin import StdinBroker
from .._transport.iopub import IOPubOutbox
from .._transport.loops import call_soon, own_thread
from .._transport.sockets import LoopWaker, Outbox, SocketTask
from .._transport.status import StatusTracker

if TYPE_CHECKING:
    from .._control.subshells import Subshells
    from .._debugger.lazy import LazyDebugger as Debugger
    from .._shell.comms import CommManager
    from .._shell.runner import ShellRunner
    from .._shell.shell import TrioShell

log = logging.getLogger("kernel.io")

READER_TIMEOUT = 10.0
"""Seconds a complete/inspect/is_complete/history request may take before it fails."""
LANE_BUFFER = 8
"""Decoded requests a lane holds before its socket is no longer read (small on purpose)."""

Arrival = tuple[Message, int]
"""A decoded request and its size on the wire."""


class _Lane:
    """Requests of one channel that could not be routed the moment they arrived (I/O loop)."""

    def __init__(self) -> None:
        self.waiting: collections.deque[Arrival] = collections.deque()
        self.arrived = trio.Event()
        """Set when ``waiting`` gains a request; replaced by the lane's task once empty."""

    def add(self, arrival: Arrival) -> None:
        self.waiting.append(arrival)
        self.arrived.set()

    def has_room(self) -> bool:
        return len(self.waiting) < LANE_BUFFER


class IOLoop:
    """Everything that runs on the I/O thread; built on the kernel's thread, run on its own."""

    def __init__(self, session: WireSession, sockets: dict[Channel, zmq.Socket],
                 on_ready: Callable[[IOLoop], object], on_shutdown: Callable[[bool], None],
                 ports: Mapping[str, int] | None = None) -> None:
        self.session = session
        self.sockets = sockets
        self.ports = dict(ports or {})
        self.usage = _usage.UsageMeter()
        self.shell: TrioShell | None = None
        self._attached = trio.Event()
        self._on_ready = on_ready
        self._on_shutdown = on_shutdown
        self.main_runner: ShellRunner | None = None
        self.comms: CommManager | None = None
        self.debugger: Debugger | None = None
        self.subshells: Subshells | None = None
        self.default_timeout: float | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.outboxes: dict[Channel, Outbox[Any]] = {}
        self.iopub: IOPubOutbox | None = None
        self.stdin: StdinBroker | None = None
        self.status: StatusTracker | None = None
        self.interrupter: Interrupter | None = None
        self._nursery: trio.Nursery | None = None
        self._stop_scope = trio.CancelScope()
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._reader_limiter = trio.CapacityLimiter(2)
        self._ids = itertools.count(1)

    def run(self) -> None:
        """Thread body."""
        trio.run(self._main)

    def stop_threadsafe(self) -> None:
        """Ask the loop to flush what it holds and end (from any thread, even before it runs)."""
        with self._stop_lock:
            if self.token is None:
                self._stop_requested = True
                return
        call_soon(self.token, self._stop_scope.cancel)

    def attach(self, shell: TrioShell, main_runner: ShellRunner, comms: CommManager,
               make_runner: Callable[[str], ShellRunner], debugger: Debugger,
               default_timeout: float | None) -> None:
        """Wire in the shell once it exists (on the I/O loop, via ``call_soon``).

        The I/O loop starts before IPython is even imported, so that ``kernel_info`` is
        answered as early as possible; requests for the shell that arrive before this wait
        in their lane's feed.
        """
        from .._control.subshells import Subshells

        assert self._nursery is not None and self.interrupter is not None
        self.shell, self.main_runner, self.comms = shell, main_runner, comms
        self.debugger = debugger
        self.default_timeout = default_timeout
        self.subshells = Subshells(self._nursery, self.interrupter, make_runner)
        self._attached.set()

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start a task in the I/O loop's nursery (on the I/O loop).

        Work asked for while the loop shuts down is dropped with a log line.
        """
        if self._nursery is None:
            log.info("I/O loop is not running: %s not started", getattr(async_fn, "__name__", async_fn))
            return
        try:
            self._nursery.start_soon(async_fn, *args)
        except RuntimeError:
            log.info("I/O loop is shutting down: %s not started", getattr(async_fn, "__name__", async_fn))

    def post(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """``start_soon`` from any thread; a no-op once the I/O loop has finished."""
        if self.token is not None:
            call_soon(self.token, self.start_soon, async_fn, *args)

    def spawn_thread(self, body: Callable[[], None], name: str) -> None:
        """Run ``body`` in a worker thread owned by the I/O loop (from any thread).

        Thread cells start here: the I/O loop never runs user code, so a thread cell starts
        while a cell blocks the shell's thread. At shutdown a thread still blocked in one C
        call after being interrupted is abandoned rather than allowed to hang the exit.
        """
        self.post(self._own_thread, body, name)

    async def _own_thread(self, body: Callable[[], None], name: str) -> None:
        await own_thread(body, name=name, abandon_on_cancel=True)

    def run_cells_stop(self, cells: list[RunningCell] | None, reason: str, done: Callable[[], object]) -> None:
        """Stop ``cells`` (None: all) from the I/O loop, then call ``done`` (from any thread)."""
        async def stop() -> None:
            assert self.interrupter is not None
            try:
                await self.interrupter.stop(self.all_running_cells() if cells is None else cells, reason)
            finally:
                done()

        self.post(stop)

    def watch_deadline(self, cell: RunningCell, seconds: float) -> None:
        """Stop ``cell`` for timing out after ``seconds`` (from any thread)."""
        self.post(self._watch, cell, seconds)

    async def _main(self) -> None:
        with self._stop_lock:
            self.token = trio.lowlevel.current_trio_token()
            if self._stop_requested:  # the kernel gave up while this thread was starting
                self._stop_scope.cancel()
        waker = LoopWaker(self.token)
        self.iopub = IOPubOutbox(waker)
        self.status = StatusTracker(self.iopub)
        self.outboxes = {Channel.IOPUB: self.iopub}
        for channel in (Channel.SHELL, Channel.CONTROL, Channel.STDIN):
            self.outboxes[channel] = Outbox(waker, prepare=freeze)
        self.stdin = StdinBroker(self.outboxes[Channel.STDIN].put, self._header)
        self.interrupter = Interrupter()
        tasks = {channel: SocketTask(sock, channel.value) for channel, sock in self.sockets.items()}
        lanes = {channel: _Lane() for channel in (Channel.SHELL, Channel.CONTROL)}
        try:
            async with trio.open_nursery() as sockets_nursery:
                for channel, task in tasks.items():
                    receive, can_receive = self._receiver(channel, lanes)
                    sockets_nursery.start_soon(task.run, receive, self.outboxes[channel], self._encode,
                                               can_receive)
                with self._stop_scope:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        for channel, lane in lanes.items():
                            nursery.start_soon(self._route_waiting, lane, tasks[channel])
                        self._on_ready(self)
                        await trio.sleep_forever()
                sockets_nursery.cancel_scope.cancel()
            # The last replies and statuses (a shutdown_reply, the final idle) still go out.
            deadline = time.monotonic() + 2.0
            for channel, task in tasks.items():
                task.flush(self.outboxes[channel], self._encode, deadline)
        finally:
            # Also when the loop failed: a writer held by back-pressure must not wait forever.
            for outbox in self.outboxes.values():
                outbox.close()

    def all_running_cells(self) -> list[RunningCell]:
        """Running cells of every shell (I/O loop)."""
        cells = self.main_runner.running_cells(include_silent=True) if self.main_runner else []
        return cells + (self.subshells.running_cells() if self.subshells else [])

    def _encode(self, out: Outgoing) -> list[bytes]:
        return encode(self.session, out)

    def _header(self, msg_type: str) -> dict[str, Any]:
        return make_header(self.session.new_msg_id(), msg_type, self.session.session)

    def _receiver(self, channel: Channel, lanes: dict[Channel, _Lane]
                  ) -> tuple[Callable[[list[bytes]], None], Callable[[], bool] | None]:
        """The socket task's callbacks: take one message, and may I take another."""
        if channel is Channel.IOPUB:
            return self._on_subscription, None

        def on_frames(frames: list[bytes]) -> None:
            try:
                msg = decode(self.session, frames, channel, time.monotonic())
            except WireError as exc:
                log.warning("dropped a message on %s: %s", channel, exc)
                return
            if channel is Channel.STDIN:
                self._on_stdin(msg)
                return
            lane = lanes[channel]
            arrival = (msg, sum(len(f) for f in frames))
            if lane.waiting or not self._route_now(*arrival):
                lane.add(arrival)

        if channel is Channel.STDIN:
            return on_frames, None
        return on_frames, lanes[channel].has_room

    def _on_stdin(self, msg: Message) -> None:
        if lookup(msg.msg_type, Channel.STDIN).handler is Handler.INPUT_REPLY:
            assert self.stdin is not None
            self.stdin.deliver(msg)
        else:
            log.warning("unexpected %s on stdin: dropped", msg.msg_type)

    def _on_subscription(self, frames: list[bytes]) -> None:
        """XPUB hands us subscriptions; greet each one (JEP 65 ``iopub_welcome``)."""
        first = frames[0] if frames else b""
        if first[:1] == b"\x01" and self.iopub is not None:
            topic = first[1:].decode("utf-8", "replace")
            self.iopub.put(Outgoing("iopub_welcome", {"subscription": topic}, {}))

    def _route_now(self, msg: Message, size: int) -> bool:
        """Route a request if that needs no waiting (socket task); False: it must wait."""
        row = lookup(msg.msg_type, msg.channel)
        if row.where is not Where.SHELL:
            self._serve_here(msg, row)
            return True
        if not self._attached.is_set():
            return False
        runner = self._runner_for(msg)
        if runner is None:
            self._unknown_subshell(msg, row)
            return True
        if not runner.room.try_acquire(size):
            return False
        self._hand_over(runner, msg, row, size)
        return True

    async def _route_waiting(self, lane: _Lane, reader: SocketTask) -> None:
        """The lane's task: route waiting requests in arrival order, each once it can be."""
        while True:
            await lane.arrived.wait()
            while lane.waiting:
                msg, size = lane.waiting[0]
                while not self._route_now(msg, size):
                    await self._until_routable(msg, size)
                lane.waiting.popleft()
                reader.resume()  # room in the lane again: the socket task may read on
            lane.arrived = trio.Event()

    async def _until_routable(self, msg: Message, size: int) -> None:
        """Wait until a request ``_route_now`` refused may go: its shell attached, with room."""
        await self._attached.wait()
        runner = self._runner_for(msg)
        if runner is not None:  # else: answered as an unknown subshell on the next try
            await runner.room.wait_for_room(size)

    def _serve_here(self, msg: Message, row: Row) -> None:
        """Start serving an I/O-loop request in its own task (the table's "where")."""
        assert self._nursery is not None
        if row.how is RunMode.THREAD:
            self._nursery.start_soon(self._serve_in_thread, msg, row)
        else:
            self._nursery.start_soon(self._serve, msg, row)

    def _hand_over(self, runner: ShellRunner, msg: Message, row: Row, size: int) -> None:
        """Give a request to its shell, whose room it already holds."""
        from .._shell.runner import Request

        request = Request(next(self._ids), msg, row, self._options(msg, row, runner), size)
        try:
            runner.submit(request)
        except Exception:
            runner.room.release(size)
            log.exception("%s could not be handed to its shell", msg.msg_type)

    def _runner_for(self, msg: Message) -> ShellRunner | None:
        subshell_id = msg.subshell_id
        if subshell_id is None:
            return self.main_runner
        return self.subshells.get(subshell_id) if self.subshells is not None else None

    def _options(self, msg: Message, row: Row, runner: ShellRunner) -> CellOptions:
        """The request's route, computed once: the cell's options for execute requests."""
        if row.how is not None:
            return CellOptions(mode=row.how)
        code = msg.content.get("code")
        return cell_options(
            code if isinstance(code, str) else "",
            msg.metadata,
            runner.default_mode,
            silent=bool(msg.content.get("silent", False)),
            default_timeout=self.default_timeout,
        )

    def _unknown_subshell(self, msg: Message, row: Row) -> None:
        assert self.status is not None
        log.error("%s for unknown subshell %s", msg.msg_type, msg.subshell_id)
        self.status.busy(msg.header)
        if row.reply is not None:
            content = _replies.bad_request(msg.msg_type, f"no subshell with id {msg.subshell_id!r}")
            if row.handler is Handler.EXECUTE:
                content["execution_count"] = self.shell.execution_count if self.shell else 0
            self._reply(msg, row, content)
        self.status.idle(msg.header)

    def _reply(self, msg: Message, row: Row, content: dict[str, Any]) -> None:
        assert row.reply is not None
        self.outboxes[msg.channel].put(Outgoing(row.reply, content, msg.header, msg.idents))

    async def _serve_in_thread(self, msg: Message, row: Row) -> None:
        assert self.status is not None
        self.status.busy(msg.header)
        try:
            await self._attached.wait()
            from .._control.requests import READERS

            assert self.shell is not None  # attached

            try:
                # A reader can hang on a user object (a property waiting on a lock the running
                # cell holds): give up on it, so later completions are not stuck behind it.
                with trio.fail_after(READER_TIMEOUT):
                    content = await trio.to_thread.run_sync(READERS[row.handler], self.shell, msg.content,
                                                            limiter=self._reader_limiter,
                                                            abandon_on_cancel=True)
            except Exception as exc:
                log.exception("%s failed", msg.msg_type)
                content = _replies.bad_request(msg.msg_type, f"{type(exc).__name__}: {exc}")
            self._reply(msg, row, content)
        finally:
            self.status.idle(msg.header)

    async def _serve(self, msg: Message, row: Row) -> None:
        """An I/O-loop request: busy, the handler's reply (an error reply if it fails), idle."""
        assert self.status is not None
        self.status.busy(msg.header)
        try:
            if row.handler is Handler.UNKNOWN:
                log.error("unknown message type %r on %s: no reply", msg.msg_type, msg.channel)
                return
            content = await self._handle_io(msg, row)
            if content is not None:
                self._reply(msg, row, content)
        except Exception as exc:
            log.exception("handling %s failed", msg.msg_type)
            if row.reply is not None:
                self._reply(msg, row, {"status": "error", **_replies.error_content(
                    type(exc).__name__, f"the kernel failed to answer this: {exc}", [])})
        finally:
            self.status.idle(msg.header)

    async def _handle_io(self, msg: Message, row: Row) -> dict[str, Any] | None:
        """The reply content of an I/O-loop request (None: already answered)."""
        handler = row.handler
        if handler is Handler.KERNEL_INFO:
            return _replies.kernel_info(debugger=self._debugger_available(), subshells=True)
        if handler is Handler.COMM_INFO:
            target = msg.content.get("target_name")
            comms = self.comms.info(target if isinstance(target, str) else None) if self.comms else {}
            return {"status": "ok", "comms": comms}
        if handler is Handler.INTERRUPT:
            self._reply(msg, row, {"status": "ok"})
            await self.interrupt()
            return None
        if handler is Handler.USAGE:
            return await self.usage.reply()
        if handler is Handler.CONNECT:
            return _usage.connect_reply(self.ports)
        if handler is Handler.SHUTDOWN:
            restart = bool(msg.content.get("restart", False))
            self._reply(msg, row, {"status": "ok", "restart": restart})
            self._on_shutdown(restart)
            return None
        await self._attached.wait()
        if handler is Handler.DEBUG:
            assert self.debugger is not None
            return await self.debugger.handle(msg.content)
        return await self._subshell_request(handler, msg.content)

    def _debugger_available(self) -> bool:
        """Whether debugpy can be imported, known before the debugger object exists."""
        if self.debugger is not None:
            return bool(self.debugger.available)
        import importlib.util

        return importlib.util.find_spec("debugpy") is not None

    async def _subshell_request(self, handler: Handler, content: dict[str, Any]) -> dict[str, Any]:
        assert self.subshells is not None
        if handler is Handler.CREATE_SUBSHELL:
            from .._control.subshells import SubshellStartError

            try:
                return {"status": "ok", "subshell_id": await self.subshells.create()}
            except SubshellStartError as exc:
                return {"status": "error", **_replies.error_content("RuntimeError", str(exc), [str(exc)])}
        if handler is Handler.LIST_SUBSHELL:
            return {"status": "ok", "subshell_id": self.subshells.ids()}
        subshell_id = content.get("subshell_id")
        if isinstance(subshell_id, str) and await self.subshells.delete(subshell_id):
            return {"status": "ok"}
        return _replies.bad_request("delete_subshell_request", f"no subshell with id {subshell_id!r}")

    async def interrupt(self) -> None:
        """Stop every running non-silent cell of every shell (I/O loop)."""
        assert self.interrupter is not None
        cells = [c for c in self.all_running_cells() if not c.silent]
        await self.interrupter.stop(cells, "interrupt")

    async def _watch(self, cell: RunningCell, seconds: float) -> None:
        """Stop ``cell`` once it has run ``seconds``; ends early when the cell does."""
        assert self.interrupter is not None
        with trio.CancelScope() as cell.watcher:
            if cell.finished:  # it ended before this task started
                return
            await trio.sleep(seconds)
        if not cell.finished:
            await self.interrupter.stop([cell], "timeout")
