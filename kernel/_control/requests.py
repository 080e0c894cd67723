"""Handlers for the requests that read the shell but never run user cells.

Each takes the shell and a request's content and returns the reply content; they run in a
worker thread of the I/O loop (see ``_core.routing``), so they must not touch sockets. Bad
content gets an error reply, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.completer import provisionalcompleter, rectify_completions
from IPython.utils.tokenutil import token_at_cursor

from .._core import replies as _replies
from .._core.routing import Handler
from .._shell.shell import TrioShell


def _code_and_cursor(msg_type: str, content: dict[str, Any]) -> tuple[str, int] | dict[str, Any]:
    code = content.get("code")
    if not isinstance(code, str):
        return _replies.bad_request(msg_type, "'code' must be a string")
    cursor = content.get("cursor_pos", len(code))
    if cursor is None:
        cursor = len(code)
    if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor <= len(code):
        return _replies.bad_request(msg_type, f"'cursor_pos' must be 0..{len(code)}")
    return code, cursor


def complete(shell: TrioShell, content: dict[str, Any]) -> dict[str, Any]:
    """``complete_reply`` from IPython's completer, with completion types for JupyterLab."""
    parsed = _code_and_cursor("complete_request", content)
    if isinstance(parsed, dict):
        return parsed
    code, cursor = parsed
    with provisionalcompleter():
        completions = list(rectify_completions(code, shell.Completer.completions(code, cursor)))
    start = completions[0].start if completions else cursor
    end = completions[0].end if completions else cursor
    types = [
        {"start": c.start, "end": c.end, "text": c.text, "type": c.type, "signature": c.signature}
        for c in completions
    ]
    return {
        "status": "ok",
        "matches": [c.text for c in completions],
        "cursor_start": start,
        "cursor_end": end,
        "metadata": {"_jupyter_types_experimental": types},
    }


def inspect(shell: TrioShell, content: dict[str, Any]) -> dict[str, Any]:
    """``inspect_reply``: IPython's inspector on the name at the cursor."""
    parsed = _code_and_cursor("inspect_request", content)
    if isinstance(parsed, dict):
        return parsed
    code, cursor = parsed
    level = content.get("detail_level", 0)
    level = level if level in (0, 1) else 0
    name = token_at_cursor(code, cursor)
    try:
        bundle = shell.object_inspect_mime(name, detail_level=level)
    except Exception:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    return {"status": "ok", "found": True, "data": bundle, "metadata": {}}


def is_complete(shell: TrioShell, content: dict[str, Any]) -> dict[str, Any]:
    """``is_complete_reply`` from IPython's input transformer."""
    code = content.get("code")
    if not isinstance(code, str):
        return {"status": "unknown"}
    status, indent = shell.input_transformer_manager.check_complete(code)
    reply: dict[str, Any] = {"status": status}
    if status == "incomplete":
        reply["indent"] = " " * (indent or 0)
    return reply


def history(shell: TrioShell, content: dict[str, Any]) -> dict[str, Any]:
    """``history_reply`` for the ``tail``, ``range`` and ``search`` access types."""
    manager = shell.history_manager
    if manager is None:
        return {"status": "ok", "history": []}
    raw = bool(content.get("raw", True))
    output = bool(content.get("output", False))
    kind = content.get("hist_access_type")
    try:
        if kind == "tail":
            entries = manager.get_tail(_int(content, "n", 10), raw=raw, output=output,
                                       include_latest=True)
        elif kind == "range":
            entries = manager.get_range(_int(content, "session", 0), _int(content, "start", 0),
                                        content.get("stop") if isinstance(content.get("stop"), int) else None,
                                        raw=raw, output=output)
        elif kind == "search":
            pattern = content.get("pattern", "*")
            entries = manager.search(pattern if isinstance(pattern, str) else "*", raw=raw,
                                     output=output, n=content.get("n") if isinstance(content.get("n"), int) else None,
                                     unique=bool(content.get("unique", False)))
        else:
            return _replies.bad_request("history_request", f"unknown hist_access_type {kind!r}")
    except ValueError as exc:
        return _replies.bad_request("history_request", str(exc))
    # IPython numbers the current session 0 in ``range`` answers; frontends expect the real
    # session number, the one ``tail`` reports.
    current = manager.session_number
    return {
        "status": "ok",
        "history": [[current if entry[0] == 0 else entry[0], *entry[1:]] for entry in entries],
    }


def _int(content: dict[str, Any], key: str, default: int) -> int:
    value = content.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


READERS: dict[Handler, Callable[[TrioShell, dict[str, Any]], dict[str, Any]]] = {
    Handler.COMPLETE: complete,
    Handler.INSPECT: inspect,
    Handler.IS_COMPLETE: is_complete,
    Handler.HISTORY: history,
}
"""The shell-reading requests, by the dispatch table's handler (rows routed ``io / thread``)."""
