"""Comms (``comm_open``/``comm_msg``/``comm_close``) through the ``comm`` package's API.

ipywidgets and other comm users call ``comm.create_comm`` and ``comm.get_comm_manager``;
we point those at this module while a kernel is open (``install``/``uninstall``, reference-
counted). Each kernel has its own ``CommManager``; which one a call means is taken from a
context variable that each shell runner sets for its tasks, or else from the cell that
started the calling thread, so two kernels in one process keep their comms apart and none
is a process-wide default. Frontend messages are handled on the shell
runner's loop (the thread that owns the user's objects) as tasks, so a widget update is
applied while a cell awaits.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import comm
import comm.base_comm

from .._core.wire import Message, Outgoing
from .._shell.cell import Cell, cell_for_output, current_cell
from .._shell.patch import SharedPatch
from .._transport.iopub import IOPubOutbox

log = logging.getLogger("kernel.comms")


class Comm(comm.base_comm.BaseComm):
    """A comm whose messages go out on its kernel's iopub, parented to the current cell."""

    def __init__(self, *args: Any, manager: CommManager | None = None, **kwargs: Any) -> None:
        self._manager = manager or active_manager()
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        cell = cell_for_output()
        parent = cell.parent if cell is not None else {}
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        self._manager.iopub.put(
            Outgoing(msg_type, content, parent, metadata=metadata or {}, buffers=list(buffers or []))
        )


class CommManager(comm.base_comm.CommManager):
    """The comms of one kernel."""

    def __init__(self, iopub: IOPubOutbox) -> None:
        super().__init__()
        self.iopub = iopub

    def receive(self, msg: Message) -> None:
        """Handle a frontend comm message (on the shell runner's loop)."""
        as_dict = {
            "header": msg.header,
            "parent_header": msg.parent_header,
            "metadata": msg.metadata,
            "content": msg.content,
            "buffers": msg.buffers,
            "msg_id": msg.msg_id,
            "msg_type": msg.msg_type,
        }
        content = msg.content
        if not isinstance(content.get("comm_id"), str):
            log.error("%s without a string comm_id: dropped", msg.msg_type)
            return
        if msg.msg_type == "comm_open" and not isinstance(content.get("target_name"), str):
            log.error("comm_open without a string target_name: dropped")
            return
        token = current_cell.set(Cell(parent=msg.header, iopub=self.iopub, comms=self))
        try:
            handler = {"comm_open": self.comm_open, "comm_msg": self.comm_msg,
                       "comm_close": self.comm_close}[msg.msg_type]
            handler(None, "", as_dict)  # type: ignore[arg-type]
        finally:
            current_cell.reset(token)

    def info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The ``comms`` field of a ``comm_info_reply``."""
        return {
            comm_id: {"target_name": c.target_name}
            for comm_id, c in list(self.comms.items())
            if target_name is None or c.target_name == target_name
        }


_active: contextvars.ContextVar[CommManager | None] = contextvars.ContextVar(
    "trio_kernel_comm_manager", default=None
)
_originals: dict[str, Any] = {}


def activate(manager: CommManager) -> None:
    """Make ``manager`` the one ``comm`` calls see in this task and the tasks it starts."""
    _active.set(manager)


def _point_comm_here() -> None:
    """Point the ``comm`` package at this module."""
    _originals.update(create_comm=comm.create_comm, get_comm_manager=comm.get_comm_manager)
    comm.create_comm = _create_comm
    comm.get_comm_manager = active_manager


def _give_comm_back() -> None:
    comm.create_comm = _originals.pop("create_comm")
    comm.get_comm_manager = _originals.pop("get_comm_manager")


_patch = SharedPatch(_point_comm_here, _give_comm_back)
install, uninstall = _patch.install, _patch.uninstall


def active_manager() -> CommManager:
    """The comm manager of the kernel whose code calls: from the task's context, else from
    the cell that started the calling thread (a plain ``threading.Thread``)."""
    manager = _active.get()
    if manager is not None:
        return manager
    cell = cell_for_output()
    if cell is not None and isinstance(cell.comms, CommManager):
        return cell.comms
    raise RuntimeError("no trio-kernel cell is running here: comms need one")


def _create_comm(*args: Any, **kwargs: Any) -> Comm:
    return Comm(*args, **kwargs)
