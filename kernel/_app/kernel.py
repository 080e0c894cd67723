"""``open_kernel``: a Jupyter kernel inside a running trio program.

The nursery tree and thread layout (the architecture in one place)::

    open_kernel()                         caller's trio loop (the "shell loop")
    └── nursery
        ├── _own_heartbeat                owns the heartbeat thread (echo, no trio)
        ├── _own_io_thread                owns the I/O thread and its trio loop:
        │                                 all sockets, control requests, completion...
        │                                 (see ``_ioloop``)
        ├── AsyncioBridge.run             the nursery of the asyncio loop (trio-asyncio, lazy)
        ├── GuiLoops.run                  the nursery of the GUI pump (only while %gui is on)
        ├── BackgroundTasks.run           the nursery of ``background`` tasks (outlive cells)
        └── ShellRunner.run               the main shell's dispatcher (see ``_runner``)
            ├── _run_queue                queued cells, one at a time
            ├── handle(...)               task cells and comm messages
            └── handle_in_thread(...)     thread cells, each a worker thread with a trio loop

Threads: the shell loop's thread runs user code; the I/O thread owns the shell, control,
stdin and iopub sockets (and is the only one to send on them); the heartbeat thread owns
the heartbeat socket. Hand-offs between loops go through ``TrioToken.run_sync_soon`` and
thread-safe outboxes, never by touching another loop's objects. Every thread is started
by a trio task that waits for it to end, with two exceptions: at shutdown, a thread cell or
subshell still blocked in one C call after being interrupted is abandoned (a daemon thread,
ended with the process) rather than allowed to hang the shutdown; and debugpy, once the
debugger is used, runs threads of its own for the life of the process.
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
from .._transport.heartbeat import serve_heartbeat

if TYPE_CHECKING:
    from .._debugger.debugger import Debugger
    from .._shell.background import BackgroundTasks
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

    async def _stop_cells(self, grace: float = 3.0) -> None:
        """Interrupt every running cell (thread cells too) before the nursery is cancelled."""
        io = self._io
        if io is None:
            return
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        io.run_cells_stop(None, "shutdown", lambda: token.run_sync_soon(done.set))
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
) -> AsyncIterator[Kernel]:
    """Run a kernel on the current trio loop for the duration of the block.

    With ``connection_file`` the ports and key are read from that file (a frontend wrote
    it); without, a new file (mode 0600) is written to the Jupyter runtime dir and removed
    on exit. Cells run on the caller's loop, so they can ``await`` the application's
    objects; a cell that blocks blocks the application too (use ``# thread`` cells).
    """
    bound = bind_kernel_sockets(connection_file, ip, transport, name or "")
    async with kernel_on(bound, namespace, default_mode=default_mode, default_timeout=default_timeout,
                         history_file=history_file) as kernel:
        yield kernel


@asynccontextmanager
async def kernel_on(
    bound: BoundSockets,
    namespace: dict[str, Any] | None = None,
    *,
    default_mode: RunMode = RunMode.QUEUE,
    default_timeout: float | None = None,
    history_file: str | None = None,
) -> AsyncIterator[Kernel]:
    """``open_kernel`` on sockets already bound; takes ownership of ``bound`` (closes it).

    ``python -m kernel`` binds its sockets before importing trio and IPython, so that a
    frontend's first connection attempt succeeds instead of waiting for zmq's reconnect
    interval (100 ms).
    """
    session = make_session(bound.info.key, bound.info.signature_scheme)
    kernel = Kernel(bound.info, bound.connection_file)
    shell_side: _ShellSide | None = None
    app_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_own_heartbeat, bound.heartbeat)
            io = await nursery.start(_own_io_thread, session, bound.sockets, kernel)
            # The sockets answer kernel_info from here on; IPython is imported and the shell
            # built only now, while requests for it wait in the I/O loop (see IOLoop.attach).
            shell_side = await _start_shell_side(nursery, io, kernel, namespace, default_mode,
                                                 default_timeout, history_file)
            io.status.starting()  # type: ignore[union-attr]
            log.info("kernel ready; attach with: jupyter console --existing %s", bound.connection_file)
            try:
                yield kernel
            except BaseException as exc:
                # Raised again below, outside the nursery, so that the application gets
                # its own exception back rather than wrapped in an ExceptionGroup.
                app_error = exc
            finally:
                with trio.CancelScope(shield=True):
                    await shell_side.debugger.close()  # resumes a cell stopped at a breakpoint
                    await kernel._stop_cells()
                    await shell_side.background.aclose()  # their finally blocks, bounded
                nursery.cancel_scope.cancel()
        if app_error is not None:
            raise app_error
    finally:
        if shell_side is not None:
            shell_side.close()  # first: it removes the SIGINT listener that reaches the I/O loop
        bound.close()


@attrs.define
class _ShellSide:
    """What ``_start_shell_side`` built, and how to take it down again."""

    shell: TrioShell
    comms: CommManager
    debugger: Debugger
    background: BackgroundTasks
    remove_sigint_listener: Callable[[], None] | None

    def close(self) -> None:
        from .._shell import streams as _streams
        from .._shell.comms import deactivate
        from .._shell.shell import close_shell

        if self.remove_sigint_listener is not None:
            self.remove_sigint_listener()
        deactivate(self.comms)
        _streams.uninstall()
        close_shell(self.shell)


async def _start_shell_side(nursery: trio.Nursery, io: IOLoop, kernel: Kernel,
                            namespace: dict[str, Any] | None, default_mode: RunMode,
                            default_timeout: float | None, history_file: str | None) -> _ShellSide:
    """Import IPython, build the shell and its runner, and hand them to the I/O loop."""
    from .._debugger.debugger import Debugger
    from .._shell import stdin as _stdin
    from .._shell import streams as _streams
    from .._shell import threads as _threads
    from .._shell.background import BackgroundTasks
    from .._shell.comms import CommManager, activate
    from .._shell.runner import ShellRunner
    from .._shell.services import Services
    from .._shell.shell import make_shell

    shell = kernel.shell = make_shell(namespace, history_file)
    shell.default_run_mode = default_mode
    _streams.install()
    _stdin.install()
    _threads.remember_cell_on_start()
    assert io.iopub is not None and io.stdin is not None and io.token is not None and io.status is not None
    comms = CommManager(io.iopub)
    services = Services(
        iopub=io.iopub,
        status_tracker=io.status,
        outboxes=io.outboxes,
        io_token=io.token,
        watch_deadline=io.watch_deadline,
        stdin_request=io.stdin.request,
        default_timeout=default_timeout,
    )
    runner = ShellRunner(shell, services, comms)
    activate(comms)
    await nursery.start(runner.run)
    await nursery.start(shell.asyncio_bridge.run)
    await nursery.start(shell.gui_loops.run)
    background = BackgroundTasks(shell, drive=shell.asyncio_bridge.drive)
    await nursery.start(background.run)
    background.install(shell)
    io_token = io.token
    debugger = Debugger(
        shell, lambda body: services.publish("debug_event", body, {}),
        spawn=io.post,
    )
    kernel._io = io
    io_token.run_sync_soon(io.attach, shell, runner, comms,
                           functools.partial(ShellRunner, shell, services, comms), debugger)
    remove_listener = None
    if threading.current_thread() is threading.main_thread():
        remove_listener = _sigint.add_listener(lambda: io.post(io.interrupt))
    return _ShellSide(shell, comms, debugger, background, remove_listener)


async def _own_heartbeat(sock: zmq.Socket, *, task_status: trio.TaskStatus[None]) -> None:
    """Run the heartbeat thread; on cancellation tell it to stop, then wait for it."""
    stop = threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(  # joined by this nursery; its own limiter, never queued behind cells
            functools.partial(trio.to_thread.run_sync, serve_heartbeat, sock, stop,
                              limiter=trio.CapacityLimiter(1))
        )
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            stop.set()


async def _own_io_thread(session: Any, sockets: dict[Channel, zmq.Socket],
                         kernel: Kernel, *, task_status: trio.TaskStatus[IOLoop]) -> None:
    """Start the I/O thread, report its loop once ready, and join it when cancelled."""
    token = trio.lowlevel.current_trio_token()
    ready = trio.Event()

    def on_shutdown(restart: bool) -> None:
        if io.debugger is not None:
            io.debugger.end_soon()  # a cell stopped at a breakpoint holds the shell loop
        token.run_sync_soon(kernel._request_shutdown, restart)

    io = IOLoop(session, sockets,
                on_ready=lambda _: token.run_sync_soon(ready.set), on_shutdown=on_shutdown)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_join_io_thread, io)
        try:
            await ready.wait()
            task_status.started(io)
            await trio.sleep_forever()
        finally:
            io.stop_threadsafe()


async def _join_io_thread(io: IOLoop) -> None:
    await trio.to_thread.run_sync(io.run, limiter=trio.CapacityLimiter(1))
