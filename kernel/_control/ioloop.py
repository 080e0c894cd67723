"""The I/O thread: owns every Jupyter socket and answers what must never wait for user code.

It runs its own trio loop, so it keeps serving while a cell holds the shell thread::

    IOLoop.run (thread, trio.run)
    └── nursery
        ├── SocketTask.run  shell    (reads requests, sends replies)
        ├── SocketTask.run  control
        ├── SocketTask.run  stdin    (input_request out, input_reply in)
        ├── SocketTask.run  iopub    (XPUB: welcome on subscribe, all broadcasts)
        ├── _dispatch                (the run-mode table's "where": I/O loop or a shell)
        ├── _serve(...)              (control and kernel_info/comm_info, one task each)
        ├── _serve_in_thread(...)    (complete/inspect/is_complete/history in a worker
        │                             thread, abandoned after READER_TIMEOUT)
        ├── _watch(...)              (per-cell timeouts)
        ├── interrupt / stop tasks   (Interrupter.stop: cancel, then escalate)
        ├── Subshells._own(...)      (one per subshell: owns its thread and trio loop)
        └── DAPClient.run            (the debugger's reader, while a debug session is open)

Socket tasks decode and verify each message as it arrives and drop, with a log line, any
that is malformed or badly signed; the dispatcher sees only ``Message`` objects.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio
import zmq

from .._control import usage as _usage
from .._control.interrupt import Interrupter, RunningCell
from .._core import replies as _replies
from .._core.enums import Channel, RunMode, Where
from .._core.routing import route
from .._core.wire import Message, Outgoing, WireError, WireSession, decode, encode, freeze, make_header
from .._shell.stdin import StdinBroker
from .._transport.iopub import IOPubOutbox
from .._transport.sockets import Outbox, SocketTask
from .._transport.status import StatusTracker

if TYPE_CHECKING:
    from .._control.subshells import Subshells
    from .._debugger.debugger import Debugger
    from .._shell.comms import CommManager
    from .._shell.runner import ShellRunner
    from .._shell.shell import TrioShell

log = logging.getLogger("kernel.io")

READER_TIMEOUT = 10.0
"""Seconds a complete/inspect/is_complete/history request may take before it fails."""


class IOLoop:
    """Everything that runs on the I/O thread; built on the kernel's thread, run on its own."""

    def __init__(self, session: WireSession, sockets: dict[Channel, zmq.Socket],
                 on_ready: Callable[[IOLoop], None], on_shutdown: Callable[[bool], None],
                 ports: Mapping[str, int] | None = None) -> None:
        self.session = session
        self.sockets = sockets
        self.ports = dict(ports or {})
        self.usage = _usage.UsageMeter()
        self.shell: TrioShell | None = None
        self._attached = trio.Event()
        self._early: list[Message] = []
        self._on_ready = on_ready
        self._on_shutdown = on_shutdown
        self.main_runner: ShellRunner | None = None
        self.comms: CommManager | None = None
        self.debugger: Debugger | None = None
        self.subshells: Subshells | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.outboxes: dict[Channel, Outbox[Outgoing]] = {}
        self.iopub: IOPubOutbox | None = None
        self.stdin: StdinBroker | None = None
        self.status: StatusTracker | None = None
        self.interrupter: Interrupter | None = None
        self._nursery: trio.Nursery | None = None
        self._stop_scope = trio.CancelScope()
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._incoming_send, self._incoming = trio.open_memory_channel[Message](math.inf)
        self._reader_limiter = trio.CapacityLimiter(2)

    def run(self) -> None:
        """Thread body."""
        trio.run(self._main)

    def stop_threadsafe(self) -> None:
        """Ask the loop to flush what it holds and end (from any thread, even before it runs)."""
        with self._stop_lock:
            if self.token is None:
                self._stop_requested = True
                return
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(self._stop_scope.cancel)

    def attach(self, shell: TrioShell, main_runner: ShellRunner, comms: CommManager,
               make_runner: Callable[[str], ShellRunner], debugger: Debugger) -> None:
        """Wire in the shell once it exists (on the I/O loop, via ``run_sync_soon``).

        The I/O loop starts before IPython is even imported, so that ``kernel_info`` is
        answered as early as possible; requests for the shell that arrive before this are
        kept in order and handed over here.
        """
        from .._control.subshells import Subshells

        assert self._nursery is not None
        self.shell, self.main_runner, self.comms = shell, main_runner, comms
        self.debugger = debugger
        self.subshells = Subshells(self._nursery, self.interrupter, make_runner)
        self._attached.set()
        early, self._early = self._early, []
        for msg in early:
            self._to_shell(msg)

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start a task in the I/O loop's nursery (on the I/O loop, via ``run_sync_soon``).

        Called from ``run_sync_soon`` callbacks, where an exception would crash the loop:
        work asked for while the loop shuts down is dropped with a log line instead.
        """
        try:
            assert self._nursery is not None
            self._nursery.start_soon(async_fn, *args)
        except (AssertionError, RuntimeError):
            log.info("I/O loop is shutting down: %s not started", getattr(async_fn, "__name__", async_fn))

    def post(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """``start_soon`` from any thread; a no-op once the I/O loop has finished."""
        if self.token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.start_soon, async_fn, *args)

    def run_cells_stop(self, cells: list[RunningCell] | None, reason: str, done: Callable[[], None]) -> None:
        """Stop ``cells`` (None: all) from the I/O loop, then call ``done`` (from any thread)."""
        async def stop() -> None:
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
        self.iopub = IOPubOutbox(self.token)
        self.status = StatusTracker(self.iopub)
        self.outboxes = {Channel.IOPUB: self.iopub}
        for channel in (Channel.SHELL, Channel.CONTROL, Channel.STDIN):
            self.outboxes[channel] = Outbox(self.token, prepare=freeze)
        self.stdin = StdinBroker(self.outboxes[Channel.STDIN].put, self._header)
        self.interrupter = Interrupter()
        tasks = {channel: SocketTask(sock, channel.value) for channel, sock in self.sockets.items()}
        async with trio.open_nursery() as sockets_nursery:
            for channel, task in tasks.items():
                sockets_nursery.start_soon(task.run, self._receiver(channel),
                                           self.outboxes[channel], self._encode)
            with self._stop_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._dispatch)
                    self._on_ready(self)
                    await trio.sleep_forever()
            sockets_nursery.cancel_scope.cancel()
        # The last replies and statuses (a shutdown_reply, the final idle) still go out.
        deadline = time.monotonic() + 2.0
        for channel, task in tasks.items():
            task.flush(self.outboxes[channel], self._encode, deadline)
        for outbox in self.outboxes.values():
            outbox.close()

    def all_running_cells(self) -> list[RunningCell]:
        """Running cells of every shell (I/O loop)."""
        cells = self.main_runner.running_cells(include_silent=True) if self.main_runner else []
        return cells + (self.subshells.running_cells() if self.subshells else [])

    def _encode(self, out: Outgoing) -> list[bytes]:
        return encode(self.session, out)

    def _header(self, msg_type: str) -> dict[str, Any]:
        return make_header(uuid.uuid4().hex, msg_type, self.session.session)

    def _receiver(self, channel: Channel) -> Callable[[list[bytes]], None]:
        if channel is Channel.IOPUB:
            return self._on_subscription

        def on_frames(frames: list[bytes]) -> None:
            try:
                msg = decode(self.session, frames, channel, time.monotonic())
            except WireError as exc:
                log.warning("dropped a message on %s: %s", channel, exc)
                return
            if channel is Channel.STDIN:
                assert self.stdin is not None
                self.stdin.deliver(msg)
            else:
                self._incoming_send.send_nowait(msg)

        return on_frames

    def _on_subscription(self, frames: list[bytes]) -> None:
        """XPUB hands us subscriptions; greet each one (JEP 65 ``iopub_welcome``)."""
        first = frames[0] if frames else b""
        if first[:1] == b"\x01" and self.iopub is not None:
            topic = first[1:].decode("utf-8", "replace")
            self.iopub.put(Outgoing("iopub_welcome", {"subscription": topic}, {}))

    async def _dispatch(self) -> None:
        assert self._nursery is not None
        async for msg in self._incoming:
            where = route(msg.msg_type, msg.channel, RunMode.QUEUE)
            if where.where is Where.IO:
                if where.how is RunMode.THREAD:
                    self._nursery.start_soon(self._serve_in_thread, msg)
                else:
                    self._nursery.start_soon(self._serve, msg)
            else:
                self._to_shell(msg)

    def _to_shell(self, msg: Message) -> None:
        """Hand a request to its shell: the main one, or the subshell its header names."""
        if not self._attached.is_set():
            self._early.append(msg)
            return
        subshell_id = msg.subshell_id
        runner = self.main_runner if subshell_id is None else self.subshells.get(subshell_id)
        if runner is not None:
            try:
                runner.submit(msg)
                return
            except trio.RunFinishedError:  # that shell's loop has ended (a subshell that died)
                log.error("%s for a shell that has stopped", msg.msg_type)
        if msg.msg_type.endswith("_request"):
            log.error("%s for unknown subshell %s", msg.msg_type, subshell_id)
            self.status.busy(msg.header)
            content = _replies.bad_request(msg.msg_type, f"no subshell with id {subshell_id!r}")
            if msg.msg_type == "execute_request":
                content["execution_count"] = self.shell.execution_count if self.shell else 0
            self._reply(msg, content)
            self.status.idle(msg.header)



    def _reply(self, msg: Message, content: dict[str, Any]) -> None:
        reply_type = msg.msg_type.removesuffix("_request") + "_reply"
        self.outboxes[msg.channel].put(Outgoing(reply_type, content, msg.header, msg.idents))

    async def _serve_in_thread(self, msg: Message) -> None:
        self.status.busy(msg.header)
        try:
            await self._attached.wait()
            from .._control import requests as _requests

            handler = _requests.READERS[msg.msg_type]
            try:
                # A reader can hang on a user object (a property waiting on a lock the running
                # cell holds): give up on it, so later completions are not stuck behind it.
                with trio.fail_after(READER_TIMEOUT):
                    content = await trio.to_thread.run_sync(handler, self.shell, msg.content,
                                                            limiter=self._reader_limiter,
                                                            abandon_on_cancel=True)
            except Exception as exc:
                log.exception("%s failed", msg.msg_type)
                content = _replies.bad_request(msg.msg_type, f"{type(exc).__name__}: {exc}")
            self._reply(msg, content)
        finally:
            self.status.idle(msg.header)

    async def _serve(self, msg: Message) -> None:
        self.status.busy(msg.header)
        try:
            await self._serve_io(msg)
        except Exception:
            log.exception("handling %s failed", msg.msg_type)
        finally:
            self.status.idle(msg.header)

    async def _serve_io(self, msg: Message) -> None:
        kind = msg.msg_type
        if kind == "kernel_info_request":
            self._reply(msg, _replies.kernel_info(debugger=self._debugger_available(), subshells=True))
        elif kind == "comm_info_request":
            target = msg.content.get("target_name")
            comms = self.comms.info(target if isinstance(target, str) else None) if self.comms else {}
            self._reply(msg, {"status": "ok", "comms": comms})
        elif kind == "interrupt_request":
            self._reply(msg, {"status": "ok"})
            await self.interrupt()
        elif kind in ("create_subshell_request", "delete_subshell_request", "list_subshell_request"):
            await self._attached.wait()
            self._reply(msg, await self._subshell_request(kind, msg.content))
        elif kind == "debug_request":
            await self._attached.wait()
            assert self.debugger is not None
            self._reply(msg, await self.debugger.handle(msg.content))
        elif kind == "usage_request":
            self._reply(msg, await self.usage.reply())
        elif kind == "connect_request":
            self._reply(msg, _usage.connect_reply(self.ports))
        elif kind == "shutdown_request":
            restart = bool(msg.content.get("restart", False))
            self._reply(msg, {"status": "ok", "restart": restart})
            self._on_shutdown(restart)
        else:
            log.error("unknown message type %r on %s: no reply", kind, msg.channel)

    def _debugger_available(self) -> bool:
        """Whether debugpy can be imported, known before the debugger object exists."""
        if self.debugger is not None:
            return bool(self.debugger.available)
        import importlib.util

        return importlib.util.find_spec("debugpy") is not None

    async def _subshell_request(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        assert self.subshells is not None
        if kind == "create_subshell_request":
            return {"status": "ok", "subshell_id": await self.subshells.create()}
        if kind == "list_subshell_request":
            return {"status": "ok", "subshell_id": self.subshells.ids()}
        subshell_id = content.get("subshell_id")
        if isinstance(subshell_id, str) and await self.subshells.delete(subshell_id):
            return {"status": "ok"}
        return _replies.bad_request(kind, f"no subshell with id {subshell_id!r}")

    async def interrupt(self) -> None:
        """Stop every running non-silent cell of every shell (I/O loop)."""
        cells = [c for c in self.all_running_cells() if not c.silent]
        await self.interrupter.stop(cells, "interrupt")

    async def _watch(self, cell: RunningCell, seconds: float) -> None:
        """Stop ``cell`` once it has run ``seconds``; ends early when the cell does."""
        with trio.CancelScope() as cell.watcher:
            if cell.finished:  # it ended before this task started
                return
            await trio.sleep(seconds)
        if not cell.finished:
            await self.interrupter.stop([cell], "timeout")
