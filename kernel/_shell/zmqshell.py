"""The shell class libraries see: named and placed as ipykernel's, so they detect a notebook.

Libraries decide "am I in a notebook?" from the shell's class, each in its own way (read in
their sources, 2026-12):

- rich (``console._is_jupyter``): ``type(get_ipython()).__name__ == "ZMQInteractiveShell"``.
- plotly (``io._renderers``): that name *and* a ``__module__`` starting with ``ipykernel.``
  (otherwise it falls back to ``plotly_mimetype+notebook``, which embeds plotly.js).
- pandas (``in_ipython_frontend``): ``"zmq"`` in ``str(type(get_ipython()))``, and a
  ``kernel`` attribute on the shell (``display.max_columns`` 20 instead of 0).
- tqdm (``autonotebook``): ``'ipykernel.zmqshell' in sys.modules`` (``compat``'s marker).
- many user snippets: ``"zmqshell" in str(type(get_ipython()))`` or
  ``"IPKernelApp" in get_ipython().config``.

So the class is ``ZMQInteractiveShell`` with ``__module__ = "ipykernel.zmqshell"``; it is
*not* a subclass of ipykernel's class (ipykernel is not imported), so
``isinstance(shell, ipykernel.zmqshell.ZMQInteractiveShell)`` stays False. Traitlets
options for ``ZMQInteractiveShell`` apply to it, as they do under ipykernel.

The same class carries the ipykernel-only shell API (``kernel``, ``get_parent``,
``parent_header``, ``quit(keep_kernel=True)``) and the magics of ``magics.py``. All of it
runs on the thread that runs the cell.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import trio
from IPython.core.autocall import ExitAutocall
from IPython.core.error import UsageError
from traitlets import default

from .._core.wire import Outgoing
from .._shell.cell import cell_for_output
from .._shell.compat import KernelCompat, request_of
from .._shell.shell import CellDisplayHook, CellDisplayPublisher, TrioShell


def _flush_streams() -> None:
    """As ipykernel does before rich output: text written before it (also at fd level,
    see ``fdcapture``) goes out first."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


class _DisplayHook(CellDisplayHook):
    def write_format_data(self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
        _flush_streams()
        super().write_format_data(format_dict, md_dict)


class _DisplayPublisher(CellDisplayPublisher):
    def publish(self, data: dict[str, Any], metadata: dict[str, Any] | None = None,
                source: Any = None, **kwargs: Any) -> None:
        _flush_streams()
        super().publish(data, metadata, source, **kwargs)

    def clear_output(self, wait: bool = False) -> None:
        _flush_streams()
        super().clear_output(wait)


class _Exit(ExitAutocall):
    """``exit``/``quit`` as in ipykernel: ``quit(keep_kernel=True)`` keeps the kernel."""

    def __call__(self, keep_kernel: bool = False) -> None:
        shell: Any = self._ip
        shell.keepkernel_on_exit = keep_kernel
        shell.ask_exit()


class ZMQInteractiveShell(TrioShell):
    """The kernel's shell under the name libraries test for (see the module docstring)."""

    displayhook_class = _DisplayHook
    display_pub_class = _DisplayPublisher
    kernel: KernelCompat | None = None
    keepkernel_on_exit = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from .._shell.magics import register

        register(self)

    @default("exiter")
    def _default_exiter(self) -> ExitAutocall:
        return _Exit(self)

    def attach_kernel(self, kernel: KernelCompat) -> None:
        """Give the shell its ``kernel`` object; display publishers get its session too."""
        self.kernel = kernel
        publishers: tuple[Any, ...] = (self.display_pub, self.displayhook)
        for publisher in publishers:  # ipykernel's publishers carry these; some libraries read them
            publisher.session = kernel.session
            publisher.pub_socket = kernel.iopub_socket

    def get_parent(self) -> dict[str, Any]:
        """The request of the cell running now (ipykernel ≥ 6: ipywidgets asks for it)."""
        return request_of(cell_for_output())

    @property
    def parent_header(self) -> dict[str, Any]:
        return self.get_parent()

    def ask_exit(self) -> None:
        assert self.payload_manager is not None
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": bool(self.keepkernel_on_exit)})
        self.keepkernel_on_exit = False

    def enable_matplotlib(self, gui: str | None = None) -> Any:
        """``%matplotlib notebook``: refused before the backend changes.

        matplotlib's nbagg backend talks through ``ipykernel.comm.Comm``, which publishes
        only inside ipykernel's own kernel object, so its figures would stay empty.
        """
        if gui in ("notebook", "nbagg"):
            raise UsageError(
                "%matplotlib notebook (nbagg) needs ipykernel's comm objects and does not work in "
                "trio-kernel; use %matplotlib widget (ipympl) for interactive figures, or inline.")
        return super().enable_matplotlib(gui)

    def enable_gui(self, gui: str | None = None) -> None:
        if gui in ("widget", "ipympl"):  # ipympl draws through widgets: no event loop needed
            return
        super().enable_gui(gui)

    def _publish_error(self, content: dict[str, Any]) -> None:
        """An error shown *by user code* that then carries on is output, not the cell's failure.

        ipywidgets' ``Output.capture()`` and ``%tb`` call ``showtraceback`` from inside a
        cell and swallow the exception: under ipykernel the traceback appears (in the
        widget) and the reply is ``ok``. Errors that end the cell are reported after user
        code has returned, and fail it as before.
        """
        cell = cell_for_output()
        running = cell.running if cell is not None else None
        if cell is not None and running is not None and running.gate.in_user_code:
            cell.iopub.put(Outgoing("error", content, cell.parent))
            return
        super()._publish_error(content)

    def showtraceback(self, exc_tuple: Any = None, filename: str | None = None,
                      tb_offset: int | None = None, exception_only: bool = False,
                      running_compiled_code: bool = False) -> None:
        """A cell's error starts at the cell's own frame in every ``%xmode``.

        ``run_code`` hands over a traceback that already starts below its own frame;
        IPython's plain and context formatters would skip one more frame (the cell's)
        by default, so ``%xmode plain`` would lose ``Cell In[n], line k``.
        """
        if running_compiled_code and tb_offset is None:
            tb_offset = 0
        super().showtraceback(exc_tuple, filename, tb_offset, exception_only, running_compiled_code)

    @trio.lowlevel.enable_ki_protection
    def _report(self, exc: BaseException) -> None:
        """IPython's warning after ``sys.exit()`` in a cell, as under ipykernel."""
        super()._report(exc)
        if isinstance(exc, SystemExit):
            warnings.warn("To exit: use 'exit', 'quit', or Ctrl-D.", stacklevel=1)


ZMQInteractiveShell.__module__ = "ipykernel.zmqshell"
