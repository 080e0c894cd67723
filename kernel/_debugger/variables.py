"""Variables the kernel shows itself: the namespace when no thread is stopped, rich reprs.

These functions touch user objects (``repr``, display formatters), which may be slow or
misbehave, so the debugger calls them in a worker thread with a timeout, never on the I/O
loop itself. ``stash`` is called *by debugpy* in a stopped frame (through an ``evaluate``
request) to hand one of that frame's objects to the kernel without a text round trip.
"""

from __future__ import annotations

import base64
import re
import reprlib
import sys
import threading
from typing import Any

from .._shell.shell import TrioShell

_HIDDEN = re.compile(r"_|__|___|_i{1,3}|_i\d+|_\d+|__\w+__")
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_stash_lock = threading.Lock()
_stashed: dict[str, Any] = {}


def is_hidden(shell: TrioShell, name: str) -> bool:
    """IPython's own names (``In``, ``Out``, ``_i3``, ``exit``...) and dunders."""
    return name in shell.user_ns_hidden or _HIDDEN.fullmatch(name) is not None


def describe(name: str, value: Any) -> dict[str, Any]:
    """A DAP ``Variable`` for a namespace entry (not expandable)."""
    try:
        text = _repr.repr(value)
    except Exception as exc:
        text = f"<repr failed: {type(exc).__name__}>"
    kind = type(value)
    return {
        "name": name,
        "value": text,
        "type": kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}",
        "evaluateName": name,
        "variablesReference": 0,
    }


def namespace_variables(shell: TrioShell) -> list[dict[str, Any]]:
    """The user's globals, sorted by name, without IPython's bookkeeping."""
    names = sorted(name for name in list(shell.user_ns) if not is_hidden(shell, name))
    return [describe(name, shell.user_ns[name]) for name in names if name in shell.user_ns]


def visible(shell: TrioShell, variables: list[Any]) -> list[Any]:
    """Drop hidden names from a debugpy ``variables`` list."""
    return [v for v in variables
            if not (isinstance(v, dict) and isinstance(v.get("name"), str) and is_hidden(shell, v["name"]))]


def rich(shell: TrioShell, value: Any) -> dict[str, Any]:
    """``richInspectVariables`` body: the display formatter's mime bundle, JSON-safe."""
    assert shell.display_formatter is not None  # set up by InteractiveShell.__init__
    data, metadata = shell.display_formatter.format(value)
    data = {mime: _json_safe(v) for mime, v in data.items()}
    return {"data": data, "metadata": {k: v for k, v in metadata.items() if k in data}}


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def stash(token: str, value: Any) -> None:
    """Keep ``value`` under ``token`` until ``take`` (called in the debuggee's stopped frame)."""
    with _stash_lock:
        _stashed[token] = value


def take(token: str) -> tuple[bool, Any]:
    """(found, value) for a ``stash``ed value, forgetting it."""
    with _stash_lock:
        if token in _stashed:
            return True, _stashed.pop(token)
    return False, None


def stash_expression(token: str, name: str) -> str:
    """The expression debugpy evaluates in a frame to ``stash`` variable ``name``."""
    assert name.isidentifier() and token.isalnum()
    return f"__import__({__name__!r}, fromlist=['stash']).stash({token!r}, {name})"


def modules(start: int, count: int | None) -> dict[str, Any]:
    """``modules`` body: loaded modules that come from a ``.py`` file."""
    loaded = list(sys.modules.items())
    end = len(loaded) if count is None else start + count
    found = []
    for index, (name, module) in enumerate(loaded[start:end], start):
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        if isinstance(origin, str) and origin.endswith(".py"):
            found.append({"id": index, "name": name, "path": origin})
    return {"modules": found, "totalModules": len(loaded)}
