"""A KeyboardInterrupt deferred out of kernel code that user code called, and where it lands.

User code calls kernel code all the time: a ``print`` hands its text to the iopub outbox,
a ``display`` puts a message there, and each may wake the I/O thread. That code keeps
state another thread reads (a queue, a "wake-up in flight" flag), so an interrupt torn
into the middle of it can leave the flag set with no wake-up sent, and no output would
ever leave the kernel again. Such code is therefore KeyboardInterrupt-protected
(``trio.lowlevel.enable_ki_protection``, free at run time). But an escalated SIGINT
often arrives exactly there (the spinning main thread lets go of the GIL inside that
code's wake-up syscall, which is when the I/O thread sends the signal), so dropping it
would leave a printing loop impossible to interrupt.

Instead the SIGINT handler (``_control.sigint``), finding the main thread in protected
code inside a step of user code, records the cell's gate here (``defer``), and the
protected hand-off code calls ``deliver`` as its last statement, when its state is
consistent again: there the KeyboardInterrupt is raised, into the user code that called
it. A deferral nobody delivers (protected code of trio's) is left to the interrupter's
next escalation. Pure state, no imports: any layer may call ``deliver``.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Gate(Protocol):
    """What of ``_control.interrupt.UserCodeGate`` a deferral needs."""

    @property
    def in_user_code(self) -> bool: ...

    def claim(self) -> bool: ...


class _Deferred:
    gate: Gate | None = None
    thread = 0


_deferred = _Deferred()


def defer(gate: Gate) -> None:
    """Owe ``gate``'s cell a KeyboardInterrupt at the next ``deliver`` on this thread
    (the SIGINT handler, main thread)."""
    _deferred.thread = threading.get_ident()
    _deferred.gate = gate


def drop() -> None:
    """The KeyboardInterrupt was raised some other way: nothing is owed any more."""
    _deferred.gate = None


def deliver() -> None:
    """The end of protected kernel code that user code calls (any thread): raise the
    KeyboardInterrupt deferred while it ran, if it was deferred on this thread and its
    cell still runs user code and is owed one. One attribute read when nothing is owed."""
    gate = _deferred.gate
    if gate is None or threading.get_ident() != _deferred.thread:
        return
    _deferred.gate = None
    if gate.in_user_code and gate.claim():
        raise KeyboardInterrupt
