"""The running cell, carried in a context variable.

Every piece of output (a ``print``, a ``display``, an ``error``, an ``input()`` prompt) must
reach the cell that produced it, also when three cells run at once and when a cell starts
trio tasks or threads. trio copies the context into each task and ``trio.to_thread`` copies
it into worker threads, so a ``ContextVar`` follows the work; plain ``threading.Thread``
objects get it through ``_shell.threads``.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    from .._control.interrupt import RunningCell
    from .._transport.iopub import IOPubOutbox


@attrs.define(eq=False)
class Cell:
    """One execute request while it runs: where its output goes and what it reported."""

    parent: dict[str, Any]
    iopub: IOPubOutbox
    idents: list[bytes] = attrs.field(factory=list)
    parent_content: dict[str, Any] = attrs.field(factory=dict)
    execution_count: int = 0
    silent: bool = False
    allow_stdin: bool = False
    stdin_request: Callable[[Cell, str, bool], str] | None = None
    error: dict[str, Any] | None = None
    running: RunningCell | None = None
    """The handles of the cell while it runs (why it was stopped, when it was)."""
    payload: list[dict[str, Any]] = attrs.field(factory=list)
    """This cell's execute_reply payloads (pager, ``exit``, ``set_next_input``): per cell, so
    that two cells running at once never swap them."""
    comms: Any = None
    """The ``CommManager`` of the cell's kernel, for comms made from threads without context."""


current_cell: contextvars.ContextVar[Cell | None] = contextvars.ContextVar(
    "trio_kernel_cell", default=None
)

@attrs.define(eq=False)
class LatestCell:
    """One kernel's latest queued cell: where output from threads that no cell started goes
    (a library's background thread; never trio tasks, see ``_in_trio_task``)."""

    cell: Cell | None = None


_fallbacks: list[LatestCell] = []
"""The open kernels' ``LatestCell``s, oldest first. ``sys.stdout`` is one per process, so
output with no cell of its own goes to the oldest open kernel's latest queued cell; each
kernel registers on start and unregisters on close, so none outlives its kernel."""


def register_fallback(latest: LatestCell) -> None:
    _fallbacks.append(latest)


def unregister_fallback(latest: LatestCell) -> None:
    if latest in _fallbacks:
        _fallbacks.remove(latest)


def cell_for_output() -> Cell | None:
    """The cell that output written here and now belongs to, if any."""
    cell = current_cell.get()
    if cell is not None:
        return cell
    cell = getattr(threading.current_thread(), "_trio_kernel_cell", None)
    if cell is not None:
        return cell
    oldest = _fallbacks[:1]  # a copy: another kernel may close meanwhile
    if oldest and not _in_trio_task():
        return oldest[0].cell
    return None


def _in_trio_task() -> bool:
    """True in a trio task. One with no cell in its context is not a cell's: it belongs to
    the application that embeds the kernel (its output stays on its terminal), never to
    the latest cell."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
