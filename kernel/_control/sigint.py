"""The process's SIGINT handler, for kernels whose shell loop is the main thread.

Installed by ``python -m kernel`` *before* ``trio.run``, so trio keeps it instead of its
own. A SIGINT is either our own escalation (``escalate``) or an external one
(``interrupt_mode: signal``, Ctrl-C). An external one is also reported to every registered
kernel so that awaiting cells and worker-thread cells are cancelled too. In both cases
``KeyboardInterrupt`` is raised only when the interrupted frame is user code (trio's
KeyboardInterrupt protection off); otherwise the handler returns and the cancel scopes,
which the now-responsive loop will run, do the work.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import trio

_listeners: list[Callable[[], None]] = []
_state = {"installed": False, "escalating": False}


def install() -> None:
    """Take over SIGINT in this process (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    _state["installed"] = True


def installed() -> bool:
    return bool(_state["installed"]) and signal.getsignal(signal.SIGINT) is _handler


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
    if _state["escalating"]:
        _state["escalating"] = False
    else:
        interrupt_kernels()
    if threading.current_thread() is threading.main_thread() and not trio.lowlevel.currently_ki_protected():
        raise KeyboardInterrupt
