"""The JupyterLab debugger: ``debug_request`` bridged to debugpy.

Contract with the rest of the kernel (``_ioloop`` and ``_kernel`` call only this):

- ``Debugger(shell, publish_event, spawn)`` is cheap: debugpy is imported on the first
  ``initialize`` request, never at kernel start.
- ``await debugger.handle(content) -> dict`` runs on the I/O loop for each ``debug_request``
  (content is the DAP request) and returns the ``debug_reply`` content (a DAP response).
- ``publish_event(body)`` sends a ``debug_event`` (a DAP event dict) on iopub; thread-safe.
- ``spawn(async_fn)`` starts a task in the I/O loop's nursery; thread-safe.
- ``await debugger.close()`` from the kernel's loop at shutdown: ends the debug session
  (which resumes a cell stopped at a breakpoint) on the I/O loop, waiting a bounded time.

How it works. ``debugpy.listen`` (in a worker thread of the I/O loop) starts debugpy's adapter
as a subprocess and connects the in-process debuggee (pydevd) to it; the kernel then connects
to the adapter as a DAP client over TCP (``_debugger_client``) and forwards the frontend's
requests, renumbered, answering each with the adapter's response. Every DAP event is published
as a ``debug_event``. The kernel answers itself what debugpy does not know: ``debugInfo``,
``dumpCell`` (cells are compiled under the names it reports, see ``_debugger_cells``),
``inspectVariables``, ``richInspectVariables``, ``copyToGlobals``, ``source``, ``modules``, and
``configurationDone`` (sent to debugpy during ``attach``, as debugpy's handshake requires).
Two repairs sit between the frontend and debugpy: ``_debugger_gate`` keeps frame reads and
resumes apart, and ``_debugger_stops`` reports every thread a ``continue`` resumed.

Threads. A breakpoint stops the thread running the cell (the shell loop's thread, or a thread
cell's worker), and only that thread (``stopAllThreadsOnSuspend: false``): the I/O thread keeps
answering control requests, so the frontend can inspect and resume. The kernel's own threads,
the I/O thread, the heartbeat and IPython's history saver, are marked ``pydev_do_not_trace``
so debugpy neither traces nor suspends them. debugpy starts threads of its own (pydevd's reader
and writer) and the adapter process; they belong to debugpy and last as long as the process.

debugpy is process-wide (``listen`` can be called once per process): the first kernel of a
process to start debugging starts it, and later kernels in the same process reuse the adapter
(one debug session at a time).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import linecache
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from .._debugger import cells as cells
from .._debugger import variables as dvars
from .._debugger.client import DAPClient, Pending
from .._debugger.dap import failure, response
from .._debugger.gate import RESUME_REQUESTS, ResumeGate, reads_frames
from .._debugger.start import listen, mark_kernel_threads
from .._debugger.stops import StopTracker
from .._shell.shell import TrioShell
from .._transport.loops import call_soon

log = logging.getLogger("kernel.debugger")

REQUEST_TIMEOUT = 30.0
"""Seconds to wait for debugpy to answer a request."""
START_TIMEOUT = 60.0
"""Seconds for ``debugpy.listen`` plus the connection (debugpy itself gives up after 30)."""
WORKER_TIMEOUT = 10.0
"""Seconds for kernel-side work on user objects (``repr``, display formatters)."""
CLOSE_TIMEOUT = 5.0
KERNEL_DIR = str(Path(__file__).parent.parent)


class Debugger:
    """The debug session state of one kernel; every method runs on the I/O loop unless noted."""

    def __init__(self, shell: TrioShell, publish_event: Callable[[dict[str, Any]], None],
                 spawn: Callable[[Callable[[], Awaitable[None]]], None]) -> None:
        self.shell = shell
        self.publish_event = publish_event
        self.available = importlib.util.find_spec("debugpy") is not None
        self._spawn = spawn
        self._client: DAPClient | None = None
        self._start_lock = trio.Lock()
        self._initialized = trio.Event()
        self._configured = False
        self._breakpoints: dict[str, list[dict[str, Any]]] = {}
        self._stops = StopTracker()
        self._gate = ResumeGate()
        self._removed_transforms: list[tuple[int, Any]] = []
        self._local: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "debugInfo": self._debug_info,
            "dumpCell": self._dump_cell,
            "inspectVariables": self._inspect_variables,
            "richInspectVariables": self._rich_inspect_variables,
            "source": self._source,
            "modules": self._modules,
        }

    @property
    def started(self) -> bool:
        return self._client is not None

    async def handle(self, content: dict[str, Any]) -> dict[str, Any]:
        """Answer one DAP request; never raises (failures become failed responses)."""
        if not isinstance(content, dict):
            return failure({}, "a debug_request's content must be a DAP request object")
        command = content.get("command")
        try:
            local = self._local.get(command) if isinstance(command, str) else None
            if local is not None:
                return await local(content)
            if command == "initialize":
                return await self._initialize(content)
            if self._client is None:
                return failure(content, "the debugger is not started (send 'initialize' first)")
            if command == "attach":
                return await self._attach(content)
            if command == "configurationDone" and self._configured:
                return response(content)
            if command == "copyToGlobals":
                return await self._copy_to_globals(content)
            if command == "disconnect":
                return await self._disconnect(content)
            reply = await self._forward_through_gate(content)
            if command == "setBreakpoints":
                self._remember_breakpoints(content, reply)
            elif command == "variables" and reply.get("success"):
                body = reply.get("body") or {}
                body["variables"] = dvars.visible(self.shell, body.get("variables") or [])
            return reply
        except trio.TooSlowError:
            log.warning("debug request %r timed out", command)
            return failure(content, f"{command} timed out")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            return failure(content, f"the connection to debugpy is closed: {exc}")
        except Exception as exc:
            log.exception("debug request %r failed", command)
            return failure(content, f"{type(exc).__name__}: {exc}")

    async def _forward_through_gate(self, request: dict[str, Any]) -> dict[str, Any]:
        """Forward a request, keeping frame reads and resumes apart (see ``_debugger.gate``)."""
        command = request.get("command")
        arguments = request.get("arguments")
        if reads_frames(command, arguments if isinstance(arguments, dict) else {}):
            if self._gate.resuming:
                return failure(request, f"{command}: the thread is resuming; ask again once it stops")
            with self._gate.reading():
                return await self._forward(request)
        if command in RESUME_REQUESTS:
            await self._gate.resume()
        return await self._forward(request)

    async def _forward(self, request: dict[str, Any], command: str | None = None,
                       arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``request`` (or another command on its behalf) to debugpy; answer ``request``."""
        assert self._client is not None
        if arguments is None:
            arguments = request.get("arguments") if isinstance(request.get("arguments"), dict) else None
        reply = await self._client.request(command or str(request.get("command")), arguments)
        return {**reply, "request_seq": response(request)["request_seq"], "command": request.get("command", "")}

    def _on_event(self, event: dict[str, Any]) -> None:
        """Called by the connection's reader for every DAP event."""
        name = event.get("event")
        if name == "initialized":
            self._initialized.set()
        elif name == "stopped":
            self._gate.stopped()
        if self._stops.on_event(event):
            self.publish_event(event)

    def _on_response(self, pending: Pending, response: dict[str, Any]) -> None:
        """Called by the connection's reader for every response, before later messages."""
        if pending.command == "continue":
            for event in self._stops.on_continue_response(pending.arguments, response):
                self.publish_event(event)

    async def _initialize(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._start_lock:
            if self._client is not None and self._client.closed.is_set():
                await self._end_session()  # debugpy went away: start over
            if self._client is None:
                with trio.fail_after(START_TIMEOUT):
                    mark_kernel_threads()
                    host, port = await trio.to_thread.run_sync(listen, abandon_on_cancel=True)
                    stream = await trio.open_tcp_stream(host, port)
                client = DAPClient(stream, self._on_event, REQUEST_TIMEOUT, self._on_response)
                self._initialized = trio.Event()
                self._configured = False
                self._client = client
                self._spawn(client.run)
                self._keep_leading_blank_lines()
                log.info("debugger started; debugpy adapter at %s:%d", host, port)
        return await self._forward(request)

    async def _attach(self, request: dict[str, Any]) -> dict[str, Any]:
        """``attach``; debugpy answers it only after ``configurationDone``, sent here."""
        assert self._client is not None
        arguments = dict(request.get("arguments") or {})
        arguments.setdefault("justMyCode", True)
        arguments.setdefault("rules", []).append({"path": KERNEL_DIR, "include": False})
        arguments["stopAllThreadsOnSuspend"] = False
        arguments["steppingResumesAllThreads"] = False
        attach = await self._client.send("attach", arguments)
        with trio.fail_after(REQUEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                async def first(wait: Callable[[], Awaitable[None]]) -> None:
                    await wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(first, self._initialized.wait)
                nursery.start_soon(first, attach.done.wait)
        if self._initialized.is_set() and not self._configured:
            done = await self._client.request("configurationDone")
            self._configured = bool(done.get("success"))
        reply = await self._client.wait(attach)
        return {**reply, "request_seq": response(request)["request_seq"]}

    async def _disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        """End the session: debugpy removes breakpoints and resumes stopped threads."""
        arguments = {**(request.get("arguments") or {}), "terminateDebuggee": False, "restart": False}
        client = self._client
        try:
            reply = await self._forward(request, arguments=arguments)
        finally:
            await self._end_session()
        if not reply.get("success") and client is not None and client.closed.is_set():
            # debugpy may close the connection before it answers: the session is over anyway.
            return response(request)
        return reply

    async def _end_session(self) -> None:
        client, self._client = self._client, None
        self._breakpoints.clear()
        self._stops = StopTracker()
        self._gate = ResumeGate()
        self._configured = False
        self._restore_transforms()
        if client is not None:
            await client.aclose()
            log.info("debugger stopped")

    async def _shut(self) -> None:
        """End the session, if any, as ``disconnect`` does (idempotent)."""
        client = self._client
        if client is None:
            return
        with trio.move_on_after(CLOSE_TIMEOUT), \
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await client.request("disconnect", {"restart": False, "terminateDebuggee": False})
        if self._client is client:
            await self._end_session()

    def end_soon(self) -> None:
        """End the session in the background (on the I/O thread, when shutdown is requested).

        A cell stopped at a breakpoint holds the shell loop, which must run to shut down.
        """
        if self._client is not None:
            self._spawn(self._shut)

    async def close(self) -> None:
        """End the session if any (from the kernel's loop; the work runs on the I/O loop)."""
        if self._client is None:
            return
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        async def on_io() -> None:
            try:
                await self._shut()
            finally:
                call_soon(token, done.set)

        self._spawn(on_io)
        with trio.move_on_after(CLOSE_TIMEOUT + 1):
            await done.wait()

    def _remember_breakpoints(self, request: dict[str, Any], reply: dict[str, Any]) -> None:
        source = (request.get("arguments") or {}).get("source") or {}
        path = source.get("path")
        if not isinstance(path, str) or not reply.get("success"):
            return
        lines = [{"line": bp["line"]} for bp in (reply.get("body") or {}).get("breakpoints", [])
                 if isinstance(bp, dict) and isinstance(bp.get("line"), int)]
        if lines:
            self._breakpoints[path] = lines
        else:
            self._breakpoints.pop(path, None)

    def _keep_leading_blank_lines(self) -> None:
        """While debugging, cells keep leading blank lines so line numbers match the dumped file.

        The list is read by the shell thread when a cell is transformed; removing an item is
        a single atomic list operation.
        """
        from IPython.core.inputtransformer2 import leading_empty_lines

        transforms = self.shell.input_transformer_manager.cleanup_transforms
        if leading_empty_lines in transforms:
            index = transforms.index(leading_empty_lines)
            self._removed_transforms.append((index, transforms.pop(index)))

    def _restore_transforms(self) -> None:
        transforms = self.shell.input_transformer_manager.cleanup_transforms
        while self._removed_transforms:
            index, transform = self._removed_transforms.pop()
            transforms.insert(index, transform)

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on user objects in a worker thread, abandoned after ``WORKER_TIMEOUT``."""
        with trio.fail_after(WORKER_TIMEOUT):
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def _debug_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return response(request, body={
            "isStarted": self.started,
            "hashMethod": cells.HASH_METHOD,
            "hashSeed": cells.HASH_SEED,
            "tmpFilePrefix": cells.prefix(),
            "tmpFileSuffix": cells.SUFFIX,
            "breakpoints": [{"source": path, "breakpoints": lines} for path, lines in self._breakpoints.items()],
            "stoppedThreads": sorted(self._stops.stopped),
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        })

    async def _dump_cell(self, request: dict[str, Any]) -> dict[str, Any]:
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            return failure(request, "dumpCell needs arguments.code, a string")
        with trio.fail_after(WORKER_TIMEOUT):
            path = await trio.to_thread.run_sync(cells.dump_cell, code, abandon_on_cancel=True)
        return response(request, body={"sourcePath": path})

    async def _inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        variables = await self._in_worker(dvars.namespace_variables, self.shell)
        return response(request, body={"variables": variables})

    async def _rich_inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        name, frame_id = arguments.get("variableName"), arguments.get("frameId")
        if not isinstance(name, str) or not name.isidentifier():
            # Group rows of the variables view ("special variables"...) have no value.
            return response(request, body={"data": {}, "metadata": {}})
        if self._client is not None and self._stops.stopped and not self._gate.resuming and isinstance(frame_id, int):
            token = uuid.uuid4().hex
            with self._gate.reading():
                reply = await self._client.request("evaluate", {
                    "expression": dvars.stash_expression(token, name), "frameId": frame_id, "context": "repl",
                })
            found, value = dvars.take(token)
            if not (reply.get("success") and found):
                return failure(request, str(reply.get("message") or f"cannot evaluate {name}"))
        elif name in self.shell.user_ns:
            value = self.shell.user_ns[name]
        else:
            return failure(request, f"name {name!r} is not defined")
        return response(request, body=await self._in_worker(dvars.rich, self.shell, value))

    async def _copy_to_globals(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        src, dst, frame_id = (arguments.get("srcVariableName"), arguments.get("dstVariableName"),
                              arguments.get("srcFrameId"))
        if not (isinstance(src, str) and src.isidentifier() and isinstance(dst, str) and dst.isidentifier()):
            return failure(request, "srcVariableName and dstVariableName must be identifiers")
        if not isinstance(frame_id, int):
            return failure(request, "copyToGlobals needs srcFrameId")
        return await self._forward(request, command="setExpression", arguments={
            "expression": f"globals()[{dst!r}]", "value": src, "frameId": frame_id,
        })

    async def _source(self, request: dict[str, Any]) -> dict[str, Any]:
        path = ((request.get("arguments") or {}).get("source") or {}).get("path")
        if not isinstance(path, str):
            return failure(request, "source needs arguments.source.path")
        try:
            with trio.fail_after(WORKER_TIMEOUT):
                content = await trio.to_thread.run_sync(
                    functools.partial(Path(path).read_text, encoding="utf-8"), abandon_on_cancel=True)
        except (OSError, UnicodeDecodeError) as exc:
            # A cell that was never dumped: IPython keeps its (transformed) code in linecache.
            lines: Any = linecache.cache.get(path)  # (size, mtime, lines, fullname), or lazy
            if lines is None or not lines[2]:
                return failure(request, f"source unavailable: {exc}")
            content = "".join(lines[2])
        return response(request, body={"content": content})

    async def _modules(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        start, count = arguments.get("startModule", 0), arguments.get("moduleCount")
        start = start if isinstance(start, int) and start >= 0 else 0
        count = count if isinstance(count, int) and count > 0 else None
        return response(request, body=dvars.modules(start, count))
