"""The IPython shell that runs cells on a trio loop.

``TrioShell`` changes four things about ``InteractiveShell``, each because a kernel needs it:

- Output goes to the *current cell* (``_cell.current_cell``) as iopub messages, through
  ``CellDisplayHook`` (``execute_result``), ``CellDisplayPublisher`` (``display_data``,
  ``update_display_data``, ``clear_output``) and ``_showtraceback`` (``error``).
- ``run_code`` is our own so that trio's ``Cancelled`` is *not* treated as a user error:
  IPython would print it and swallow it, which breaks the cancel scope that implements
  interrupt. The cancellation is stored on the ``ExecutionResult`` and re-raised by the
  executor. ``run_code`` runs user code in steps (``_usercode``), the only place where an
  escalated KeyboardInterrupt may land; ``run_cell_async`` repairs what a hostile cell
  does to trio's cancellation (a scope left open, a stray ``Cancelled``).
- Exception groups get a proper ``error`` message (IPython only prints them to stderr).
- The pager, ``exit`` and ``set_next_input`` become execute_reply payloads, as frontends expect.

Two more hooks, each a line or two here with the logic in a module of its own: awaiting
statements are driven by ``AsyncioBridge.drive`` (asyncio futures go to the kernel's
trio-asyncio loop, ``_shell/asyncio_bridge.py``), and ``enable_gui`` (``%gui``,
``%matplotlib qt``) goes to ``GuiLoops`` (``_shell/gui.py``).
"""

from __future__ import annotations

import bdb
import math
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import trio
from IPython.core import page, payloadpage
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.core.payload import PayloadManager

from .._control import sigint as _sigint
from .._control.interrupt import RunningCell, UserCodeGate
from .._core import replies as _replies
from .._core.enums import RunMode
from .._core.wire import Outgoing
from .._debugger.cells import CellCompiler
from .._shell.asyncio_bridge import AsyncioBridge, user_traceback
from .._shell.cell import Cell, cell_for_output, current_cell
from .._shell.completion import CompleterOnDemand
from .._shell.gui import GuiLoops
from .._shell.history import DeferredHistory, KernelHistoryManager, defers
from .._shell.usercode import UserCoroutine, run_block

_PACKAGE_DIR = str(Path(__file__).parent.parent)


def is_cancellation(exc: BaseException | None) -> bool:
    """True for trio's ``Cancelled`` or a group made only of them."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(e) for e in exc.exceptions)
    return False


def _is_interrupt(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or a group of them (one raised in a task the cell started)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_interrupt(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


class CellDisplayHook(DisplayHook):
    """Publishes a cell's last expression as ``execute_result`` to that cell."""

    @property
    def prompt_count(self) -> int:
        cell = current_cell.get()
        if cell is not None:
            return cell.execution_count
        return self.shell.execution_count - 1 if self.shell is not None else 0

    def start_displayhook(self) -> None:
        self._is_active = True

    def write_output_prompt(self) -> None:
        """No prompt: frontends draw ``Out[n]`` from the execution count."""

    def write_format_data(self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
        cell = cell_for_output()
        if cell is None:
            sys.stdout.write(str(format_dict.get("text/plain", "")) + "\n")
            return
        content = {
            "execution_count": cell.execution_count,
            "data": format_dict,
            "metadata": md_dict or {},
        }
        cell.iopub.put(Outgoing("execute_result", content, cell.parent))

    def finish_displayhook(self) -> None:
        self._is_active = False


class CellDisplayPublisher(DisplayPublisher):
    """Publishes ``display()`` output to the cell that called it."""

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        self._validate_data(data, metadata)
        cell = cell_for_output()
        if cell is None:
            sys.stdout.write(str(data.get("text/plain", "")) + "\n")
            return
        msg_type = "update_display_data" if update else "display_data"
        content = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
        cell.iopub.put(Outgoing(msg_type, content, cell.parent))

    def clear_output(self, wait: bool = False) -> None:
        cell = cell_for_output()
        if cell is not None:
            cell.iopub.put(Outgoing("clear_output", {"wait": bool(wait)}, cell.parent))


class TrioShell(CompleterOnDemand):
    """An ``InteractiveShell`` whose cells run as coroutines on the caller's trio loop."""

    displayhook_class = CellDisplayHook
    display_pub_class = CellDisplayPublisher
    compiler_class = CellCompiler  # cells named as the debugger's dumpCell names them

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.autoawait = True
        self.default_run_mode = RunMode.QUEUE
        self.set_hook("show_in_pager", page.as_hook(payloadpage.page), 99)
        # functools.wraps makes the method look like MagicsManager.register_function to mypy.
        self.register_magic_function(self._runmode_magic, "line", "runmode")  # type: ignore[arg-type]
        self.asyncio_bridge = AsyncioBridge()  # started by the kernel: _shell/asyncio_bridge.py
        self.gui_loops = GuiLoops()  # started by the kernel: _shell/gui.py

    def _runmode_magic(self, line: str) -> None:
        """%runmode [queue|task|thread|blocking]: show or set the mode of cells that name none."""
        word = line.strip().lower()
        if word:
            if word not in RunMode._value2member_map_:
                raise UsageError(f"unknown run mode {word!r}; choose one of: {', '.join(RunMode)}")
            self.default_run_mode = RunMode(word)
        print(f"default run mode: {self.default_run_mode}")

    def _payloads(self) -> PayloadManager:
        assert self.payload_manager is not None  # set up by InteractiveShell.__init__
        return self.payload_manager

    def init_io(self) -> None:
        """Streams are installed by the kernel, not by the shell."""

    def init_history(self) -> None:
        """IPython's history, its database opened on first use and written without holding
        up cells (``_shell/history.py``)."""
        manager = DeferredHistory if defers(self.config) else KernelHistoryManager
        self.history_manager = manager(shell=self, parent=self)
        self.configurables.append(self.history_manager)

    def enable_gui(self, gui: str | None = None) -> None:
        """``%gui`` and ``%matplotlib``: see ``_shell/gui.py``."""
        self.gui_loops.enable(gui)

    def ask_exit(self) -> None:
        self._payloads().write_payload({"source": "ask_exit", "keepkernel": False})

    def set_next_input(self, s: str, replace: bool = False) -> None:
        self._payloads().write_payload(
            {"source": "set_next_input", "text": s, "replace": bool(replace)}
        )

    def showtraceback(self, exc_tuple: Any = None, filename: str | None = None,
                      tb_offset: int | None = None, exception_only: bool = False,
                      running_compiled_code: bool = False) -> None:
        """Show exception groups as ``error`` messages too (IPython only prints them)."""
        try:
            etype, value, tb = self._get_exc_info(exc_tuple)
        except ValueError:
            return super().showtraceback(exc_tuple, filename, tb_offset, exception_only,
                                         running_compiled_code)
        if isinstance(value, BaseExceptionGroup) and not exception_only:
            stb = traceback.format_exception(etype, value, tb)
            self._showtraceback(etype, value, stb)
            return None
        return super().showtraceback(exc_tuple, filename, tb_offset, exception_only,
                                     running_compiled_code)

    def show_usage_error(self, exc: BaseException) -> None:
        """A magic's usage error is the cell's error too (IPython only prints it)."""
        self._showtraceback(type(exc), exc, [f"\x1b[0;31mUsageError\x1b[0m: {exc}"])

    def _showtraceback(self, etype: type[BaseException], evalue: BaseException, stb: list[str]) -> None:
        self._publish_error({
            "ename": etype.__name__,
            "evalue": str(evalue),
            "traceback": [str(line) for line in stb],
        })

    def _publish_error(self, content: dict[str, Any]) -> None:
        """Make ``content`` the current cell's error and send it as an ``error`` message."""
        cell = cell_for_output()
        if cell is None:
            sys.stderr.write("\n".join(content["traceback"]) + "\n")
            return
        cell.error = content
        cell.iopub.put(Outgoing("error", content, cell.parent))

    async def run_cell_async(self, raw_cell: str, *args: Any, **kwargs: Any) -> ExecutionResult:
        """IPython's cell pipeline, with the kernel's asyncio loop as the cell's running loop
        once asyncio is used (``asyncio_bridge``), plus the repairs a hostile cell can make
        necessary.

        A cell that leaves a ``trio.CancelScope`` open (``cs.__enter__()`` without exit)
        would corrupt the cancel scope stack of the task that runs it: the scopes it left
        are closed here and the cell fails. A ``trio.Cancelled`` that no cancelled scope
        is waiting for (one the cell caught and raised again, or one of a scope it left
        open) is the cell's error, not a cancellation: passed on, it would end the shell.
        """
        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:  # not on a trio loop (IPython's own synchronous runner)
            return await super().run_cell_async(raw_cell, *args, **kwargs)
        async with self.asyncio_bridge.cell_scope(raw_cell):
            return await self._run_cell_repaired(task, raw_cell, *args, **kwargs)

    async def _run_cell_repaired(self, task: trio.lowlevel.Task, *args: Any, **kwargs: Any) -> ExecutionResult:
        before = getattr(task, "_cancel_status", None)
        result = await super().run_cell_async(*args, **kwargs)
        leaked = _close_leaked_scopes(task, before)
        cancelled = getattr(result, "trio_cancelled", None)
        if cancelled is not None and trio.current_effective_deadline() != -math.inf:
            result.trio_cancelled = None  # type: ignore[attr-defined]  # ours, set by run_code
            result.error_in_exec = cancelled
            self._report(cancelled)
        if leaked:
            error = RuntimeError(f"the cell left {leaked} trio.CancelScope(s) open; "
                                 "the kernel closed them (use `with` for cancel scopes)")
            if result.error_in_exec is None:
                result.error_in_exec = error
            self._publish_error(_replies.error_content("RuntimeError", str(error), [
                f"\x1b[0;31mRuntimeError\x1b[0m: {error}"]))
        return result

    async def run_code(self, code_obj: Any, result: Any = None, *, async_: bool = False) -> bool:
        """Run one compiled block of a cell; True when it raised.

        User code runs in steps (``_usercode``): only there may an escalated
        KeyboardInterrupt land. Unlike IPython's version, a trio cancellation is recorded
        on ``result`` without a traceback so the executor can hand it back to the cell's
        cancel scope. On the main thread, a SIGINT handler the block replaced is put back.
        """
        saved_hook, sys.excepthook = sys.excepthook, self.excepthook
        self.sys_excepthook = saved_hook
        cell = current_cell.get()
        running = cell.running if cell is not None else None
        gate = running.gate if running is not None else UserCodeGate()
        try:
            try:
                if async_:
                    block = eval(code_obj, self.user_global_ns, self.user_ns)
                    await self.asyncio_bridge.drive(_marked_steps(gate, block))
                else:
                    run_block(gate, code_obj, self.user_global_ns, self.user_ns)
            finally:
                sys.excepthook = saved_hook
                self._restore_sigint(running)
        except BaseException as exc:
            if is_cancellation(exc):
                # Not an error of the cell: kept off ``error_in_exec`` so that IPython
                # neither formats nor stores a traceback for it (that costs ~50 ms).
                if result is not None:
                    result.trio_cancelled = exc
                return True
            if _is_interrupt(exc):
                # An interrupt must answer fast: a plain traceback (about 1 ms) instead of
                # IPython's highlighted one, and none stored in history (another 50 ms).
                self._report_interrupt(exc)
                return True
            if result is not None:
                result.error_in_exec = exc
            if not isinstance(exc, bdb.BdbQuit):
                self._report(exc)
            return True
        return False

    @trio.lowlevel.enable_ki_protection
    def _restore_sigint(self, running: RunningCell | None) -> None:
        """Put the kernel's SIGINT handler back if the block replaced it, and say so."""
        if not _sigint.restore():
            return
        if running is not None and running.signal_blocked:
            note = ("an interrupt could not be delivered: this cell replaced the SIGINT handler. "
                    "The kernel's handler is back in place.\n")
        else:
            note = ("this cell replaced the SIGINT handler; the kernel put its own back "
                    "(without it, interrupts cannot stop blocking code).\n")
        cell = cell_for_output()
        if cell is not None:
            cell.iopub.write_stream(cell.parent, "stderr", note)

    @trio.lowlevel.enable_ki_protection
    def _report_interrupt(self, exc: BaseException) -> None:
        """A plain traceback of the user's frames (the kernel's SIGINT handler left out).

        When the cell's timeout sent the KeyboardInterrupt, the cell failed with a
        ``TimeoutError``, and that is what is reported.
        """
        cell = cell_for_output()
        running = cell.running if cell is not None else None
        if running is not None and running.reason == "timeout":
            content = _replies.timeout_error(running.timeout or 0.0)
            self._publish_error(content)
            return
        while isinstance(exc, BaseExceptionGroup):  # raised in a task the cell started
            exc = exc.exceptions[0]
        lines = ["Traceback (most recent call last):\n"]
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith(_PACKAGE_DIR):
                continue
            label = self.compile.format_code_name(frame.filename)  # ("Cell", "In[3]") for cells
            where = f"{label[0]} {label[1]}" if label else f'File "{frame.filename}"'
            lines.append(f"  {where}, line {frame.lineno}, in {frame.name}\n")
            if frame.line:
                lines.append(f"    {frame.line}\n")
        stb = [*lines, "\x1b[0;31mKeyboardInterrupt\x1b[0m: interrupted by the kernel"]
        self._showtraceback(type(exc), exc, stb)

    @trio.lowlevel.enable_ki_protection
    def _report(self, exc: BaseException) -> None:
        """Show the error of a block, protected from KeyboardInterrupt.

        An interrupt escalates with repeated SIGINTs until the cell's loop responds; one
        arriving while the first KeyboardInterrupt is being formatted (slow the first time)
        would otherwise abort the report, and the cell would end "ok" with no error.
        """
        if isinstance(exc, SystemExit):
            self.showtraceback(exception_only=True)
        elif self.custom_exceptions and isinstance(exc, self.custom_exceptions):
            self.CustomTB(type(exc), exc, exc.__traceback__)
        else:
            # Start the traceback at the user's code, below run_code's (and the driver's) frame.
            tb = user_traceback(exc.__traceback__)
            self.showtraceback((type(exc), exc, tb), running_compiled_code=True)


async def _marked_steps(gate: UserCodeGate, coro: types.CoroutineType[Any, Any, Any]) -> None:
    """``coro`` with the user-code mark set around each of its steps (``usercode``), as a
    coroutine, so that the asyncio bridge can drive it: the bridge's own code between two
    steps runs unmarked, and asyncio futures the cell yields pass through to the bridge."""
    await UserCoroutine(gate, coro)


def _close_leaked_scopes(task: trio.lowlevel.Task, before: Any) -> int:
    """Close the cancel scopes a cell entered on ``task`` and left open; return how many.

    Reads trio's private per-task cancel status (there is no public view of the scope
    stack); when it is not there, or ``before`` is not below the current status (the cell
    exited a scope it did not enter), nothing is touched.
    """
    status = getattr(task, "_cancel_status", None)
    leaked = []
    while status is not None and status is not before:
        leaked.append(status._scope)
        status = status._parent
    if status is not before:
        return 0
    for scope in leaked:
        try:
            scope.__exit__(None, None, None)
        except RuntimeError:
            break
    return len(leaked)


def make_shell(namespace: dict[str, Any] | None, history_file: str | None,
               overrides: Any = None, profile_dir: Any = None) -> TrioShell:
    """Create the shell; the first one in a process becomes IPython's global instance.

    ``overrides`` (a traitlets ``Config``: command-line options, the ``IPKernelApp``
    section) is merged last. The class is ``zmqshell.ZMQInteractiveShell``, the name
    libraries test for to detect a notebook kernel.

    Libraries (matplotlib-inline, ipywidgets, comm) find the shell via ``get_ipython()``,
    which only knows the singleton, so the first kernel registers there; later kernels in
    the same process are independent shells that those libraries will not see.
    """
    from traitlets.config import Config

    config = Config()
    config.InteractiveShell.colors = "linux"
    # Live-object completion answers in about a millisecond; jedi's static analysis takes
    # 0.5 s on first use and competes for the GIL with a running cell. Users can turn it
    # back on with ``%config IPCompleter.use_jedi = True``.
    config.IPCompleter.use_jedi = False
    if history_file is not None:
        config.HistoryManager.hist_file = history_file
    # IPython commits every cell to sqlite by default, which costs about 1 ms of each
    # execute round trip. Batching ten entries is safe: history requests and a clean
    # shutdown write the cache out first; only a crash can lose the last few entries.
    config.HistoryManager.db_cache_size = 10
    if overrides is not None:
        config.merge(overrides)
    kwargs: dict[str, Any] = {"config": config, "profile_dir": profile_dir}
    if namespace is not None:
        kwargs["user_ns"] = namespace
    from .._shell.zmqshell import ZMQInteractiveShell

    if InteractiveShell.initialized():
        return ZMQInteractiveShell(**kwargs)
    return ZMQInteractiveShell.instance(**kwargs)


def close_shell(shell: TrioShell) -> None:
    """Stop the shell's history thread and forget the singleton if it is this shell."""
    history = shell.history_manager
    if history is not None:
        history.end_session()
        save_thread = getattr(history, "save_thread", None)
        if save_thread is not None:
            save_thread.stop()
    shell.cleanup()
    if InteractiveShell.initialized() and InteractiveShell._instance is shell:
        # Through the subclass: ``InteractiveShell.clear_instance()`` would leave
        # ``TrioShell._instance`` set, and the next ``TrioShell.instance(...)`` would hand
        # back this closed shell, ignoring its arguments (the namespace among them).
        type(shell).clear_instance()


__all__ = ["Cell", "TrioShell", "close_shell", "is_cancellation", "make_shell"]
