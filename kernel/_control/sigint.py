"""The process's SIGINT handler, for kernels whose shell loop is the main thread.

Installed by ``python -m kernel`` *before* ``trio.run``, so trio keeps it instead of its
own. A SIGINT is either our own escalation (``escalate``) or an external one
(``interrupt_mode: signal``, Ctrl-C). An external one is an interrupt request: it is
reported to every registered kernel, whose I/O loop cancels the running cells and
escalates where needed, exactly as for an ``interrupt_request``. An escalation raises
``KeyboardInterrupt`` only into a cell that is owed one (``UserCodeGate.claim``: one per
interrupt) and only where trio's KeyboardInterrupt protection is off, which is exactly
while a step of user code runs (``_shell.usercode``). Where it is on, either the cell
awaits (the thread runs trio: the cancel scope does the work), or a step of user code
called protected code, such as the kernel's hand-off of a print's text: then the
KeyboardInterrupt is deferred to the end of that code (``_core.kipoint``).

User code can replace the handler (``signal.signal(SIGINT, ...)``); the shell checks after
every block on the main thread and puts this one back (``restore``), telling the cell.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import trio

from .._core import kipoint
from .._shell.cell import current_cell

_listeners: list[Callable[[], None]] = []
_state = {"installed": False, "escalating": False}


def install() -> None:
    """Take over SIGINT in this process (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    _state["installed"] = True


def installed() -> bool:
    return bool(_state["installed"]) and signal.getsignal(signal.SIGINT) is _handler


def replaced() -> bool:
    """True when the kernel took SIGINT over and something else has it now."""
    return bool(_state["installed"]) and signal.getsignal(signal.SIGINT) is not _handler


def restore() -> bool:
    """Put the kernel's handler back if user code replaced it (main thread); True if it did."""
    if not replaced() or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, _handler)
    return True


def add_listener(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (thread- and signal-safe) on every external SIGINT; returns a remover."""
    _listeners.append(callback)
    return lambda: _listeners.remove(callback)


def escalate(thread_id: int) -> None:
    """Send SIGINT to the main thread as the second step of an interrupt."""
    _state["escalating"] = True
    signal.pthread_kill(thread_id, signal.SIGINT)


def interrupt_kernels() -> None:
    """What an external SIGINT does, without the signal: every registered kernel stops its
    running cells (cancel, then escalation). Any thread; the Enterprise Gateway launcher
    uses it for EG's interrupt request, whose signal could land before the cell blocks."""
    for callback in list(_listeners):
        callback()


def _handler(signum: int, frame: FrameType | None) -> None:
    # Python runs the handler once for signals that arrived together, so one call takes
    # every pending escalation (a counter would be left over and swallow a later Ctrl-C).
    if not _state["escalating"]:
        interrupt_kernels()
        return
    _state["escalating"] = False
    if threading.current_thread() is not threading.main_thread():
        return
    cell = current_cell.get()
    running = cell.running if cell is not None else None
    if running is None or running.finished:
        return
    if trio.lowlevel.currently_ki_protected():
        if running.gate.in_user_code and running.gate.owed():
            kipoint.defer(running.gate)  # protected code a step of user code called
        return
    # No lock here: the gate's lock may be held by the very frame this handler interrupted;
    # the main thread's gate is only claimed on the main thread.
    if running.gate.claim():
        kipoint.drop()
        raise KeyboardInterrupt
