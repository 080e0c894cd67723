"""``%gui qt`` / ``%gui tk`` / ``%matplotlib qt``: a GUI toolkit's events on the shell loop.

A GUI toolkit wants to own the thread's event loop (``QApplication.exec()``, Tk's
``mainloop``); the kernel's thread already runs trio. trio's guest mode would let Qt own the
loop, but it can only be chosen when the loop starts (``trio.lowlevel.start_guest_run``
cannot be switched on under a running ``trio.run``), and an embedded kernel runs on its
application's loop, which is not ours to restart. So the kernel keeps trio in charge and,
while a GUI is on, runs one more task on the shell loop, the *pump*: it lets the toolkit
handle everything pending (timers, input, repaints, posted events) every ``INTERVAL``
seconds. Windows then respond while the kernel is idle and while a cell awaits; a cell that
blocks (``time.sleep``) freezes them, as in ipykernel. With the GUI off there is no pump
and nothing else to pay: cells run exactly as before.

The pump is a task of a kernel-owned nursery (``GuiLoops.run``), cancelled by ``%gui``
with no argument, by ``%matplotlib inline``, and at shutdown. Runs on the main shell loop.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import trio

from .._transport.loops import KernelNursery

log = logging.getLogger("kernel.gui")

INTERVAL = 0.01
"""Seconds between two rounds of GUI events while a GUI is on (100 per second)."""

QT_BINDINGS = ("PySide6", "PyQt6", "PySide2", "PyQt5")
"""Tried in this order unless one is imported already or ``QT_API`` names one."""

OFF = (None, "", "inline", "none")


def qt_pump() -> Callable[[], None]:
    """The QApplication (made if there is none yet) and a function that runs its pending events."""
    widgets = _qt_widgets()
    app = widgets.QApplication.instance() or widgets.QApplication([])
    app.setQuitOnLastWindowClosed(False)  # closing the last window must not end anything
    return app.processEvents


def _qt_widgets() -> Any:
    import importlib

    wanted = os.environ.get("QT_API", "").lower()
    loaded = [name for name in QT_BINDINGS if name in sys.modules]
    order = loaded + [n for n in QT_BINDINGS if n.lower() == wanted] + list(QT_BINDINGS)
    for name in order:
        try:
            return importlib.import_module(f"{name}.QtWidgets")
        except ImportError:
            continue
    raise RuntimeError(f"%gui qt needs a Qt binding: install one of {', '.join(QT_BINDINGS)} "
                       "(e.g. pip install PySide6-Essentials)")


def tk_pump() -> Callable[[], None]:
    """A function that runs the pending events of Tk (all Tk interpreters of this thread)."""
    import tkinter

    root = tkinter._default_root  # type: ignore[attr-defined]
    if root is None:
        root = tkinter.Tk()  # becomes the default root that widgets made later attach to
        root.withdraw()
    tk = root.tk

    def pump() -> None:
        while tk.dooneevent(tkinter._tkinter.DONT_WAIT):  # type: ignore[attr-defined]
            pass

    return pump


PUMPS: dict[str, Callable[[], Callable[[], None]]] = {
    "qt": qt_pump, "qt5": qt_pump, "qt6": qt_pump, "qtagg": qt_pump,
    "tk": tk_pump, "tkagg": tk_pump,
}


class GuiLoops(KernelNursery):
    """The GUI integration of one kernel: at most one toolkit pumped at a time."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.active: str | None = None
        super().__init__()
        self._pump_scope: trio.CancelScope | None = None

    def enable(self, gui: str | None) -> None:
        """Switch to ``gui`` (``qt``, ``tk``...) or, for None / ``inline``, turn the GUI off.

        Called by ``%gui`` and ``%matplotlib`` (IPython's ``enable_gui``), in a cell.
        """
        name = (gui or "").lower()
        if name not in OFF and name not in PUMPS:
            # Printed, not raised, here and below: IPython's %gui turns errors into a log
            # line on the kernel's stderr, which nobody sees.
            print(f"trio-kernel has no {gui!r} GUI event loop integration; choose qt or tk "
                  "(%gui alone turns it off)", file=sys.stderr)
            return
        if self._nursery is None or trio.lowlevel.current_trio_token() is not self._token:
            print("%gui works in cells of the main shell (queue, task or blocking), whose loop "
                  "also runs the GUI; not in `# thread` cells or subshells", file=sys.stderr)
            return
        self.disable()
        if name in OFF:
            return
        try:
            pump = PUMPS[name]()
        except Exception as exc:  # no Qt binding, no X display for Tk...
            print(f"%gui {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        self._pump_scope = trio.CancelScope()
        self.active = name
        self._nursery.start_soon(self._pump, pump, self._pump_scope, name=f"gui pump ({name})")

    def disable(self) -> None:
        if self._pump_scope is not None:
            self._pump_scope.cancel()
        self._pump_scope = None
        self.active = None

    @trio.lowlevel.enable_ki_protection
    async def _pump(self, pump: Callable[[], None], scope: trio.CancelScope) -> None:
        """Run the toolkit's pending events every ``interval`` seconds until cancelled.

        An error raised by a GUI callback is logged and the pump goes on: a broken button
        handler must not end the integration (or the kernel).
        """
        with scope:
            while True:
                try:
                    pump()
                except Exception:
                    log.exception("a GUI event handler raised")
                await trio.sleep(self.interval)
