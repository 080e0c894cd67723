"""``open_kernel``: a Jupyter kernel inside a running trio program.

The nursery tree and thread layout (the architecture in one place)::

    open_kernel()                          caller's trio loop: the main shell's loop
    └── nursery
        ├── _own_heartbeat                 own_thread: the heartbeat thread (zmq proxy in C, no GIL)
        ├── _own_io_thread                 own_thread: the I/O thread and its trio loop
        │   └── IOLoop nursery             (I/O thread; never runs user code)
        │       ├── SocketTask x4          shell, control, stdin, iopub: the only code that
        │       │                          reads or sends on its socket
        │       ├── _dispatch x2           shell and control lanes: the dispatch table's
        │       │                          "where", route computed once per request
        │       ├── _feed x2               hands shell-bound requests to their runner once
        │       │                          it has room (small buffers: zmq pushes back)
        │       ├── _serve(...)            control requests, kernel_info, comm_info
        │       ├── _serve_in_thread(...)  complete/inspect/is_complete/history (workers)
        │       ├── _own_thread(...)       own_thread: one per running thread cell, a
        │       │                          worker thread with its own trio loop
        │       ├── _watch / stop tasks    timeouts and interrupts (Interrupter)
        │       └── Subshells._own(...)    own_thread: one per subshell (its own trio loop,
        │                                  running that subshell's ShellRunner.run)
        ├── AsyncioBridge.run              the nursery of the asyncio loop (trio-asyncio, lazy)
        ├── GuiLoops.run                   the nursery of the GUI pump (only while %gui is on)
        ├── BackgroundTasks.run            the nursery of ``background`` tasks (outlive cells)
        └── ShellRunner.run                the main shell's cell nursery
            └── serve(...)                 one task per started queue/task/blocking request

Who decides: each shell's ``ShellPolicy`` (pure, ``_core.policy``) decides what starts,
what waits, what is aborted and what is cancelled; its ``ShellRunner`` carries that out
from whichever thread fed the event (the I/O thread on arrival, the cell's loop when it
ends). Threads: the shell loop's thread runs user code (queue, task, blocking cells); the
I/O thread owns the shell, control, stdin and iopub sockets and starts thread cells, so a
``# thread`` cell starts while a queued cell blocks the main thread; the heartbeat thread
owns the heartbeat socket; each subshell and each running thread cell has a thread. Every
thread is started and joined by a trio task through ``_transport.loops.own_thread``;
calls into another loop go through ``loops.call_soon`` (errors reported, never crashing the
target loop), values cross through thread-safe outboxes. Two exceptions to joining: at
shutdown a thread cell or subshell still blocked in one C call after being interrupted is
abandoned (a daemon thread, ended with the process) rather than allowed to hang the
shutdown; and debugpy, once the debugger is used, runs threads of its own for the life of
the process. Process-wide patches (``sys.stdout``, ``input``, ``Thread.start``, the ``comm``
package) are reference-counted: each open kernel holds one, and closing undoes it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
import zmq

from .._control import sigint as _sigint
from .._control.ioloop import IOLoop
from .._core.enums import Channel, RunMode
from .._core.wire import make_session
from .._transport.connection import BoundSockets, ConnectionInfo, bind_kernel_sockets
from .._transport.heartbeat import HeartbeatControl, serve_heartbeat
from .._transport.loops import call_soon, own_thread

if TYPE_CHECKING:
    from .._app.ipyconfig import IPythonOptions
    from .._debugger.lazy import LazyDebugger
    from .._shell.background import BackgroundTasks
    from .._shell.cell import LatestCell
    from .._shell.comms import CommManager
    from .._shell.shell import TrioShell

log = logging.getLogger("kernel")

class Kernel:
    """The handle ``open_kernel`` yields: how to attach, and the live shell."""

    def __init__(self, info: ConnectionInfo, connection_file: Path) -> None:
        self.connection_info: dict[str, Any] = info.as_dict()
        self.connection_file = connection_file
        self.shell: TrioShell = None  # type: ignore[assignment]  # set before the handle is yielded
        self.restart_requested = False
        self._shutdown = trio.Event()
        self._io: IOLoop | None = None

    @property
    def namespace(self) -> dict[str, Any]:
        """The user namespace cells run in."""
        return self.shell.user_ns

    async def wait_for_shutdown(self) -> None:
        """Return once a frontend has sent ``shutdown_request``."""
        await self._shutdown.wait()

    def _request_shutdown(self, restart: bool) -> None:
        self.restart_requested = restart
        self._shutdown.set()

    def stop_threadsafe(self, token: trio.lowlevel.TrioToken) -> None:
        """End the kernel from any thread, also while a cell blocks the kernel's loop.

        Every cell is interrupted first (from the I/O loop, escalating into blocking code),
        so that the loop, ``token``'s, gets control back and sees the shutdown request.
        """
        io = self._io
        if io is not None:
            io.run_cells_stop(None, "shutdown", lambda: None)
        call_soon(token, self._request_shutdown, False)

    async def _stop_cells(self, grace: float = 3.0) -> None:
        """Interrupt every running cell (thread cells too) before the nursery is cancelled."""
        io = self._io
        if io is None:
            return
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        io.run_cells_stop(None, "shutdown", lambda: call_soon(token, done.set))
        with trio.move_on_after(grace):
            await done.wait()


@asynccontextmanager
async def open_kernel(
    namespace: dict[str, Any] | None = None,
    *,
    connection_file: str | os.PathLike[str] | None = None,
    ip: str = "127.0.0.1",
    transport: str = "tcp",
    name: str | None = None,
    default_mode: RunMode = RunMode.QUEUE,
    default_timeout: float | None = None,
    history_file: str | None = None,
    capture_fds: bool = False,
) -> AsyncIterator[Kernel]:
    """Run a kernel on the current trio loop for the duration of the block.

    With ``connection_file`` the ports and key are read from that file (a frontend wrote
    it); without, a new file (mode 0600) is written to the Jupyter runtime dir and removed
    on exit. Cells run on the caller's loop, so they can ``await`` the application's
    objects; a cell that blocks blocks the application too (use ``# thread`` cells).
    ``capture_fds=True`` sends what is written to fds 1 and 2 (subprocesses, C code) to
    the running cell, as the standalone kernel does; off by default: the fds are the
    application's.
    """
    bound = bind_kernel_sockets(connection_file, ip, transport, name or "")
    async with kernel_on(bound, namespace, default_mode=default_mode, default_timeout=default_timeout,
                         history_file=history_file, capture_fds=capture_fds) as kernel:
        yield kernel


@asynccontextmanager
async def kernel_on(
    bound: BoundSockets,
    namespace: dict[str, Any] | None = None,
    *,
    default_mode: RunMode = RunMode.QUEUE,
    default_timeout: float | None = None,
    history_file: str | None = None,
    ipython: IPythonOptions | None = None,
    capture_fds: bool = False,
) -> AsyncIterator[Kernel]:
    """``open_kernel`` on sockets already bound; takes ownership of ``bound`` (closes it).

    ``python -m kernel`` binds its sockets before importing trio and IPython, so that a
    frontend's first connection attempt succeeds instead of waiting for zmq's reconnect
    interval (100 ms).
    """
    session = make_session(bound.info.key, bound.info.signature_scheme)
    kernel = Kernel(bound.info, bound.connection_file)
    shell_side = _ShellSide()
    app_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_own_heartbeat, bound.heartbeat)
            io = await nursery.start(_own_io_thread, session, bound.sockets, kernel)
            # The sockets answer kernel_info from here on; IPython is imported and the shell
            # built only now, while requests for it wait in the I/O loop (see IOLoop.attach).
            await _start_shell_side(nursery, io, kernel, shell_side, namespace, default_mode,
                                    default_timeout, history_file, ipython, capture_fds)
            if io.status is None:
                raise RuntimeError("the I/O loop reported ready before its status tracker existed")
            io.status.starting()
            log.info("kernel ready; attach with: jupyter console --existing %s", bound.connection_file)
            try:
                yield kernel
            except BaseException as exc:
                # Raised again below, outside the nursery, so that the application gets
                # its own exception back rather than wrapped in an ExceptionGroup.
                app_error = exc
            finally:
                with trio.CancelScope(shield=True):
                    if shell_side.debugger is not None:
                        await shell_side.debugger.close()  # resumes a cell stopped at a breakpoint
                    await kernel._stop_cells()
                    if shell_side.background is not None:
                        await shell_side.background.aclose()  # their finally blocks, bounded
                nursery.cancel_scope.cancel()
        if app_error is not None:
            raise app_error
    finally:
        shell_side.close()  # first: it removes the SIGINT listener that reaches the I/O loop
        bound.close()


@attrs.define
class _ShellSide:
    """What ``_start_shell_side`` built, and how to take it down again.

    Each process-wide install is recorded in ``undo`` right after it succeeds, so that a
    failure half-way through start-up undoes exactly what was done (``close``).
    """

    undo: list[Callable[[], None]] = attrs.field(factory=list)
    debugger: LazyDebugger | None = None
    background: BackgroundTasks | None = None

    def close(self) -> None:
        """Undo the installs, newest first."""
        while self.undo:
            self.undo.pop()()


async def _start_shell_side(nursery: trio.Nursery, io: IOLoop, kernel: Kernel, side: _ShellSide,
                            namespace: dict[str, Any] | None, default_mode: RunMode,
                            default_timeout: float | None, history_file: str | None,
                            ipython: IPythonOptions | None = None, capture_fds: bool = False) -> None:
    """Import IPython, build the shell and its runner, and hand them to the I/O loop.

    Fills ``side`` as it goes, recording how to undo each step right after it succeeds;
    the caller closes it, also when this fails half-way.
    """
    from .._app import ipyconfig
    from .._shell import comms as _comms
    from .._shell import stdin as _stdin
    from .._shell import streams as _streams
    from .._shell import threads as _threads
    from .._shell.cell import LatestCell, register_fallback, unregister_fallback
    from .._shell.comms import CommManager
    from .._shell.compat import attach_compat
    from .._shell.payloads import CellPayloads
    from .._shell.shell import close_shell, make_shell

    if io.iopub is None or io.stdin is None or io.token is None or io.status is None:
        raise RuntimeError("the I/O loop reported ready before its outboxes existed")
    if ipython is not None:  # the standalone kernel: its profile's configuration files too
        ipython = ipyconfig.with_profile_files(ipython)
        ipyconfig.warn_about(ipython)
    shell = kernel.shell = make_shell(namespace, history_file,
                                      ipyconfig.shell_config(ipython, str(kernel.connection_file)),
                                      ipyconfig.profile_dir(ipython))
    side.undo.append(functools.partial(close_shell, shell))
    shell.default_run_mode = default_mode
    shell.payload_manager = CellPayloads(parent=shell)
    # Process-wide patches are reference-counted; each is undone by ``side.close``.
    for module in (_streams, _stdin, _threads, _comms):
        module.install()
        side.undo.append(module.uninstall)
    latest_cell = LatestCell()
    register_fallback(latest_cell)
    side.undo.append(functools.partial(unregister_fallback, latest_cell))
    comms = CommManager(io.iopub)
    attach_compat(shell, io.iopub, comms, kernel)
    capture = ipyconfig.fd_capture(shell, ipython, capture_fds)
    if capture is not None:
        side.undo.append(capture.close)
    await _start_runner(side, nursery, io, kernel, shell, comms, latest_cell, default_timeout, ipython)


async def _start_runner(side: _ShellSide, nursery: trio.Nursery, io: IOLoop, kernel: Kernel,
                        shell: TrioShell, comms: CommManager, latest_cell: LatestCell,
                        default_timeout: float | None, ipython: IPythonOptions | None) -> None:
    """Start the main shell's runner and hand the shell to the I/O loop."""
    from .._app import ipyconfig
    from .._debugger.lazy import LazyDebugger
    from .._shell.background import BackgroundTasks
    from .._shell.comms import activate
    from .._shell.runner import ShellRunner
    from .._shell.services import Services

    if io.iopub is None or io.stdin is None or io.token is None or io.status is None:
        raise RuntimeError("the I/O loop reported ready before its outboxes existed")
    services = Services(
        iopub=io.iopub,
        status_tracker=io.status,
        outboxes=io.outboxes,
        io_token=io.token,
        watch_deadline=io.watch_deadline,
        stdin_request=io.stdin.request,
        spawn_thread=io.spawn_thread,
        latest_cell=latest_cell,
        default_timeout=default_timeout,
    )
    runner = ShellRunner(shell, services, comms)
    activate(comms)  # a context variable of the runner's task: nothing to undo
    await nursery.start(runner.run)
    await nursery.start(shell.asyncio_bridge.run)
    await nursery.start(shell.gui_loops.run)
    side.background = background = BackgroundTasks(shell, drive=shell.asyncio_bridge.drive)
    await nursery.start(background.run)
    background.install(shell)
    ipyconfig.run_startup(shell, ipython)  # exec_lines, startup files: before any request runs
    side.debugger = debugger = LazyDebugger(
        shell, lambda body: services.publish("debug_event", body, {}),
        spawn=io.post,
    )
    kernel._io = io
    call_soon(io.token, io.attach, shell, runner, comms,
              functools.partial(ShellRunner, shell, services, comms), debugger, default_timeout)
    if threading.current_thread() is threading.main_thread():
        side.undo.append(_sigint.add_listener(lambda: io.post(io.interrupt)))


async def _own_heartbeat(sock: zmq.Socket, *, task_status: trio.TaskStatus[None]) -> None:
    """Run the heartbeat thread; on cancellation tell its proxy to stop, then wait for it."""
    control = HeartbeatControl.open(sock.context)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(own_thread, serve_heartbeat, sock, control,
                                                 name="heartbeat thread"))
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                control.stop()
    finally:
        control.close()


async def _own_io_thread(session: Any, sockets: dict[Channel, zmq.Socket],
                         kernel: Kernel, *, task_status: trio.TaskStatus[IOLoop]) -> None:
    """Start the I/O thread, report its loop once ready, and join it when cancelled."""
    token = trio.lowlevel.current_trio_token()
    ready = trio.Event()

    def on_shutdown(restart: bool) -> None:
        if io.debugger is not None:
            io.debugger.end_soon()  # a cell stopped at a breakpoint holds the shell loop
        call_soon(token, kernel._request_shutdown, restart)

    io = IOLoop(session, sockets,
                on_ready=lambda _: call_soon(token, ready.set), on_shutdown=on_shutdown,
                ports={k: v for k, v in kernel.connection_info.items() if k.endswith("_port")})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(own_thread, io.run, name="I/O thread", contain=False))
        try:
            await ready.wait()
            task_status.started(io)
            await trio.sleep_forever()
        finally:
            io.stop_threadsafe()

