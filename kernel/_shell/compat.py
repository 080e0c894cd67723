"""``get_ipython().kernel``: the parts of ipykernel's kernel object that libraries use.

A compatibility layer, not this kernel's API. Libraries written for ipykernel reach into
``get_ipython().kernel``; what they touch (read in their sources, 2026-12):

- ipywidgets ``Output.__enter__``: ``ip.kernel`` must not be None, then the parent
  *request* of the running cell from ``ip.get_parent()`` (ipykernel ≥ 6),
  ``kernel.get_parent()`` or ``kernel._parent_header`` (older); its
  ``["header"]["msg_id"]`` becomes the widget's ``msg_id``, which makes the frontend put
  that cell's output into the widget. ipywidgets 7: ``kernel.comm_manager``.
- pandas (``io.formats.console``, ``config_init``): a shell without a ``kernel`` attribute
  is a terminal (``display.max_columns`` becomes 0).
- ipykernel-style publishers (older ipywidgets, ipyparallel, bokeh helpers, many user
  snippets): ``kernel.session.send(kernel.iopub_socket, msg_type, content, parent=...)``,
  ``kernel.send_response(kernel.iopub_socket, ...)``, ``shell.display_pub.session`` and
  ``.pub_socket``.
- IPython code and magics written for ipykernel: ``kernel.shell``,
  ``kernel.execution_count``, ``kernel._allow_stdin``, ``kernel.raw_input``,
  ``kernel.getpass``, ``kernel.log``.
- tqdm, rich, plotly, altair and bokeh do not use the kernel object: they look at the
  shell's class (see ``zmqshell.py``) and, for tqdm, ``'ipykernel.zmqshell' in
  sys.modules`` (see ``install_module_marker``); altair renders through
  ``_repr_mimebundle_``. Code that makes ``ipykernel.comm.Comm`` objects itself (bokeh's
  ``push_notebook`` handles, matplotlib's ``nbagg``, a number of smaller libraries) needs
  ipykernel's own ``Kernel`` singleton (``Kernel.initialized()``); those comms stay
  silent here (README, "Compatibility with ipykernel").

The parent always comes from the cell running *now* (the ``current_cell`` context
variable), so it is right in task cells, thread cells, threads a cell started and comm
handlers, where ipykernel's single "last parent" can name another cell.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import types
import uuid
from typing import TYPE_CHECKING, Any

from .._core.wire import Outgoing, make_header
from .._shell.cell import Cell, cell_for_output

if TYPE_CHECKING:
    from .._shell.comms import CommManager
    from .._transport.iopub import IOPubOutbox

log = logging.getLogger("kernel.compat")


def request_of(cell: Cell | None) -> dict[str, Any]:
    """The parent request of ``cell`` in jupyter_client's dict form ({} outside a cell)."""
    if cell is None:
        return {}
    header = cell.parent
    return {
        "header": header,
        "msg_id": header.get("msg_id", ""),
        "msg_type": header.get("msg_type", ""),
        "parent_header": {},
        "metadata": {},
        "content": cell.parent_content,
        "buffers": [],
    }


def _header_of(parent: Any) -> dict[str, Any]:
    """``parent`` may be a whole message (with a ``header``) or a header already."""
    if not isinstance(parent, dict):
        return {}
    header = parent.get("header")
    return dict(header) if isinstance(header, dict) else dict(parent)


class IOPubSocket:
    """Stands in for ipykernel's iopub socket: only a token to pass to ``session.send``.

    Never a zmq socket: the real one belongs to the I/O thread.
    """

    def __repr__(self) -> str:
        return "<trio-kernel iopub (compatibility object)>"


class Session:
    """Enough of jupyter_client's ``Session`` for ``send(iopub_socket, ...)``.

    Messages go to the kernel's iopub outbox, signed and sent by the I/O thread; the
    signing key is never exposed.
    """

    def __init__(self, iopub: IOPubOutbox, iopub_socket: IOPubSocket, session_id: str) -> None:
        self._iopub = iopub
        self._iopub_socket = iopub_socket
        self.session = session_id

    def msg(self, msg_type: str, content: dict[str, Any] | None = None, parent: Any = None,
            header: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """A message dict as ``Session.msg`` builds it; its header is the one sent."""
        header = header or make_header(uuid.uuid4().hex, msg_type, self.session)
        return {"header": header, "msg_id": header["msg_id"], "msg_type": msg_type,
                "parent_header": _header_of(parent), "content": content or {}, "metadata": metadata or {}}

    def send(self, stream: Any, msg_or_type: dict[str, Any] | str, content: dict[str, Any] | None = None,
             parent: Any = None, ident: Any = None, buffers: list[Any] | None = None, track: bool = False,
             header: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish on iopub; parented to ``parent`` (a message given whole keeps its own),
        or to the running cell when there is none."""
        if stream is not self._iopub_socket:
            raise ValueError("trio-kernel's compatibility session can only send on kernel.iopub_socket")
        msg = (msg_or_type if isinstance(msg_or_type, dict)
               else self.msg(msg_or_type, content, parent, header, metadata))
        cell = cell_for_output()
        parent_header = msg.get("parent_header") or (cell.parent if cell is not None else {})
        self._iopub.put(Outgoing(msg["msg_type"], msg.get("content") or {}, parent_header,
                                 metadata=msg.get("metadata") or {}, buffers=list(buffers or []),
                                 header=msg.get("header")))
        return msg


class KernelCompat:
    """``get_ipython().kernel``: one per kernel, built when the shell side starts."""

    implementation = "trio-kernel"

    def __init__(self, shell: Any, iopub: IOPubOutbox, comm_manager: CommManager,
                 connection_file: str, connection_info: dict[str, Any]) -> None:
        self.shell = shell
        self.comm_manager = comm_manager
        self.iopub_socket = IOPubSocket()
        self.session = Session(iopub, self.iopub_socket, str(uuid.uuid4()))
        self.connection_file = connection_file
        self.connection_info = connection_info
        self.log = log
        self.eventloop = None

    def get_parent(self, channel: str | None = None) -> dict[str, Any]:
        """The request of the cell running now, in this task or thread."""
        return request_of(cell_for_output())

    @property
    def _parent_header(self) -> dict[str, Any]:
        """ipykernel < 6 spelling of ``get_parent()``."""
        return self.get_parent()

    @property
    def execution_count(self) -> int:
        cell = cell_for_output()
        return cell.execution_count if cell is not None else int(self.shell.execution_count)

    @property
    def _allow_stdin(self) -> bool:
        cell = cell_for_output()
        return bool(cell.allow_stdin) if cell is not None else False

    def send_response(self, stream: Any, msg_or_type: dict[str, Any] | str,
                      content: dict[str, Any] | None = None, ident: Any = None,
                      buffers: list[Any] | None = None, track: bool = False,
                      header: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                      channel: str | None = None) -> dict[str, Any]:
        """ipykernel's ``send_response``: ``session.send`` parented to the running cell."""
        return self.session.send(stream, msg_or_type, content, self.get_parent(channel), ident,
                                 buffers, track, header, metadata)

    def raw_input(self, prompt: str = "") -> str:
        return input(prompt)

    def getpass(self, prompt: str = "", stream: Any = None) -> str:
        import getpass

        return getpass.getpass(prompt)


class _ZmqshellMarker(types.ModuleType):
    """``sys.modules['ipykernel.zmqshell']`` until someone uses it.

    tqdm picks its notebook bar only when ``'ipykernel.zmqshell' in sys.modules``. Putting
    a module of our own there would break ipykernel's own imports (``from .zmqshell import
    ...``) in processes that also use ipykernel's modules, so this placeholder replaces
    itself with the real module on first attribute access (ImportError when ipykernel is
    not installed, as without the placeholder).
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        return getattr(real, name)


_marker_lock = threading.Lock()
MARKER_NAME = "ipykernel.zmqshell"


def install_module_marker() -> None:
    """Put the placeholder in ``sys.modules`` unless the real module is already there."""
    with _marker_lock:
        if MARKER_NAME not in sys.modules:
            sys.modules[MARKER_NAME] = _ZmqshellMarker(MARKER_NAME)


def attach_compat(shell: Any, iopub: IOPubOutbox, comm_manager: CommManager, kernel: Any) -> None:
    """Give ``shell`` its ``kernel`` object (called once per kernel, on the shell loop)."""
    compat = KernelCompat(shell, iopub, comm_manager, str(kernel.connection_file), kernel.connection_info)
    attach = getattr(shell, "attach_kernel", None)
    if attach is not None:
        attach(compat)
    install_module_marker()
