"""IPython's part of running a cell, on the cell's own loop (see ``_shell.runner``)."""

from __future__ import annotations

import sys

from IPython.core.interactiveshell import ExecutionResult

from .._shell.shell import TrioShell


async def run_in_ipython(shell: TrioShell, code: str, store_history: bool, silent: bool) -> ExecutionResult:
    """IPython's cell pipeline, plus the post-execute events it leaves to its caller.

    A trio cancellation that ``TrioShell.run_code`` kept off IPython's error path is
    raised again here, so that the cell's cancel scope sees it.
    """
    try:
        transformed, preprocessing_exc = shell.transform_cell(code), None
    except Exception:
        transformed, preprocessing_exc = code, sys.exc_info()
    result = None
    try:
        result = await shell.run_cell_async(
            code,
            store_history=store_history,
            silent=silent,
            transformed_cell=transformed,
            preprocessing_exc_tuple=preprocessing_exc,
        )
    finally:
        shell.events.trigger("post_execute")
        if not silent:
            shell.events.trigger("post_run_cell", result)
    cancelled = getattr(result, "trio_cancelled", None)
    if cancelled is not None:
        raise cancelled
    return result


KEPT_TRACEBACKS = 1000
"""Formatted tracebacks IPython keeps for ``%notebook`` export (each several KB)."""


def forget_old_tracebacks(shell: TrioShell) -> None:
    """IPython stores a formatted traceback for every failed cell and never drops one;
    keep the newest ``KEPT_TRACEBACKS`` so that a long session's memory stays bounded."""
    stored = getattr(shell.history_manager, "exceptions", None)
    if isinstance(stored, dict) and len(stored) > KEPT_TRACEBACKS:
        for count in sorted(stored)[: len(stored) - KEPT_TRACEBACKS]:
            del stored[count]
