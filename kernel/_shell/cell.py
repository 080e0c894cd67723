"""The running cell, carried in a context variable.

Every piece of output (a ``print``, a ``display``, an ``error``, an ``input()`` prompt) must
reach the cell that produced it, also when three cells run at once and when a cell starts
trio tasks or threads. trio copies the context into each task and ``trio.to_thread`` copies
it into worker threads, so a ``ContextVar`` follows the work; plain ``threading.Thread``
objects get it through ``_threads.remember_cell_on_start``.
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


current_cell: contextvars.ContextVar[Cell | None] = contextvars.ContextVar(
    "trio_kernel_cell", default=None
)

_orphan_cell: list[Cell] = []
"""The latest queued cell of the most recent kernel, for output from threads that no cell
started (a library's background thread; never trio tasks, see ``_in_trio_task``). A list so
that it can be rebound without ``global``; it is a fallback only, never consulted when a
context or thread says better."""


def set_orphan_cell(cell: Cell | None) -> None:
    _orphan_cell[:] = [cell] if cell is not None else []


def cell_for_output() -> Cell | None:
    """The cell that output written here and now belongs to, if any."""
    cell = current_cell.get()
    if cell is not None:
        return cell
    cell = getattr(threading.current_thread(), "_trio_kernel_cell", None)
    if cell is not None:
        return cell
    if _orphan_cell and not _in_trio_task():
        return _orphan_cell[0]
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
