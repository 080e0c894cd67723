"""Reply contents built from plain values: no I/O, no shell, easy to test."""

from __future__ import annotations

import sys
from typing import Any

from .. import __version__
from .._core.wire import PROTOCOL_VERSION


def kernel_info(*, debugger: bool, subshells: bool) -> dict[str, Any]:
    """The ``kernel_info_reply`` content."""
    features = ["kernel subshells"] if subshells else []
    if debugger:
        features.append("debugger")
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "trio-kernel",
        "implementation_version": __version__,
        "language_info": {
            "name": "python",
            "version": ".".join(map(str, sys.version_info[:3])),
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "pygments_lexer": "ipython3",
            "nbconvert_exporter": "python",
            "file_extension": ".py",
        },
        "banner": _banner(),
        "help_links": [
            {"text": "Python", "url": "https://docs.python.org/3/"},
            {"text": "IPython", "url": "https://ipython.readthedocs.io/"},
            {"text": "trio", "url": "https://trio.readthedocs.io/"},
        ],
        "debugger": debugger,
        "supported_features": features,
    }


def _ipython_version() -> str:
    """IPython's version once the shell has imported it; at start-up the first kernel_info
    may come first, and neither importing IPython here (the import lock) nor reading its
    metadata (importlib.metadata costs ~30 ms) is worth delaying the reply for."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython, "__version__", "(loading)")


def _banner() -> str:
    return (
        f"Python {sys.version.split()[0]} | trio-kernel {__version__} | "
        f"IPython {_ipython_version()}\nCells may `await` trio code at top level."
    )


def error_content(ename: str, evalue: str, traceback: list[str]) -> dict[str, Any]:
    """The fields shared by an ``error`` message and an error reply."""
    return {"ename": ename, "evalue": evalue, "traceback": traceback}


def interrupted_error() -> dict[str, Any]:
    """What a cell ended by interrupt reports (as ipykernel does: ``KeyboardInterrupt``)."""
    return error_content(
        "KeyboardInterrupt", "", ["\x1b[0;31mKeyboardInterrupt\x1b[0m: interrupted by the kernel"]
    )


def timeout_error(seconds: float) -> dict[str, Any]:
    """What a cell cancelled by its ``timeout=`` option reports."""
    text = f"cell exceeded its timeout of {seconds:g} s and was cancelled"
    return error_content("TimeoutError", text, [f"\x1b[0;31mTimeoutError\x1b[0m: {text}"])


def execute_reply(
    *, execution_count: int, error: dict[str, Any] | None, suppress_error: bool,
    user_expressions: dict[str, Any], payload: list[dict[str, Any]],
) -> dict[str, Any]:
    """An ``execute_reply`` for a cell that ran (ok or error)."""
    if error is not None and not suppress_error:
        return {"status": "error", "execution_count": execution_count, **error}
    return {
        "status": "ok",
        "execution_count": execution_count,
        "user_expressions": user_expressions,
        "payload": payload,
    }


def aborted_reply() -> dict[str, Any]:
    return {"status": "aborted"}


def bad_request(msg_type: str, problem: str) -> dict[str, Any]:
    """An error reply for a request whose content is malformed."""
    text = f"malformed {msg_type}: {problem}"
    return {"status": "error", **error_content("ValueError", text, [f"ValueError: {text}"])}
