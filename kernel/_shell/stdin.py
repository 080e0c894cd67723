"""``input()`` and ``getpass()`` answered by the frontend over the stdin channel.

``builtins.input`` and ``getpass.getpass`` are replaced while a kernel is open (reference-
counted, restored by the last kernel to close) by functions that
ask the *current cell* (a context variable), so cells of several kernels, and several cells
of one kernel waiting at once, each get their own answer: replies are matched to requests
by the request's msg_id, and only the first reply to a request counts (a duplicate is
dropped). Outside a cell the originals run. The waiting thread blocks (like ``input()``
always does); it wakes every 100 ms so that an asynchronous KeyboardInterrupt
(an interrupted thread cell) is seen, and on the main thread SIGINT interrupts the wait.
"""

from __future__ import annotations

import builtins
import contextlib
import getpass
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import attrs

from .._core.wire import Message, Outgoing
from .._shell.cell import Cell, cell_for_output
from .._shell.patch import SharedPatch

log = logging.getLogger("kernel.stdin")


@attrs.define
class _Pending:
    done: threading.Event = attrs.field(factory=threading.Event)
    value: str = ""


class StdinBroker:
    """Sends ``input_request`` and hands each ``input_reply`` to the thread waiting for it."""

    def __init__(self, send: Callable[[Outgoing], None], make_header: Callable[[str], dict[str, Any]]) -> None:
        self._send = send
        self._make_header = make_header
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def request(self, cell: Cell, prompt: str, password: bool) -> str:
        """Ask the frontend for a line (blocks the calling thread until it answers)."""
        if not cell.allow_stdin:
            from IPython.core.error import StdinNotImplementedError

            raise StdinNotImplementedError(
                "input() is not available: the frontend sent this request with allow_stdin=False"
            )
        header = self._make_header("input_request")
        pending = _Pending()
        with self._lock:
            self._pending[header["msg_id"]] = pending
        try:
            self._send(Outgoing("input_request", {"prompt": str(prompt), "password": bool(password)},
                                cell.parent, cell.idents, header=header))
            while not pending.done.wait(0.1):
                pass
        finally:
            with self._lock:
                self._pending.pop(header["msg_id"], None)
        return pending.value

    def deliver(self, msg: Message) -> None:
        """Called on the I/O loop for each message read from the stdin socket."""
        if msg.msg_type != "input_reply":
            return
        parent_id = msg.parent_header.get("msg_id")
        with self._lock:
            if parent_id:
                pending = self._pending.get(str(parent_id))
            else:
                # Clients such as jupyter_client's ``input()`` send no parent: answer the
                # oldest open request, as a terminal would.
                pending = next((p for p in self._pending.values() if not p.done.is_set()), None)
            if pending is None or pending.done.is_set():
                # No open request, or a duplicate: the first answer stands.
                log.warning("input_reply that matches no open input_request: dropped")
                return
            value = msg.content.get("value", "")
            pending.value = value if isinstance(value, str) else str(value)
            pending.done.set()


_originals: dict[str, Any] = {}


def _replace() -> None:
    """Replace ``input`` and ``getpass.getpass`` by functions that ask the current cell."""
    _originals["input"] = builtins.input
    _originals["getpass"] = getpass.getpass
    builtins.input = _input
    getpass.getpass = _getpass


def _restore() -> None:
    builtins.input = _originals.pop("input")
    getpass.getpass = _originals.pop("getpass")


_patch = SharedPatch(_replace, _restore)
install, uninstall = _patch.install, _patch.uninstall


def _ask(prompt: str, password: bool, original: str, *args: Any) -> str:
    cell = cell_for_output()
    if cell is None or cell.stdin_request is None:
        return _originals[original](prompt, *args)
    # What the cell printed goes out before the prompt (as under ipykernel): stream text
    # may otherwise wait for its batch on iopub while the request goes out on stdin.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return cell.stdin_request(cell, prompt, password)


def _input(prompt: object = "") -> str:
    return _ask(str(prompt), False, "input")


def _getpass(prompt: str = "Password: ", stream: Any = None) -> str:
    return _ask(prompt, True, "getpass", stream)
