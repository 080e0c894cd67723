"""IPython's completer, built on the first completion rather than with the shell.

``InteractiveShell.__init__`` builds an ``IPCompleter`` (importing ``IPython.core.completer``
and ``completerlib``, about 0.3 MiB of the kernel's memory) that a notebook needs only when
its user presses Tab. ``CompleterOnDemand`` builds it, with IPython's own
``init_completer``, the first time anything reads ``shell.Completer`` (a
``complete_request``, ``set_custom_completer``, user code) or iterates over
``shell.configurables`` (what ``%config`` does: ``%config``, ``%config IPCompleter`` and
``%config IPCompleter.use_jedi = True`` behave as with an eager completer). Appending to
``configurables``, as every ``Magics`` class does when it is registered, builds nothing.

The first reader may be a worker thread of the I/O loop (completion is served there) while
the shell's thread runs ``%config``: building is serialised by a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from IPython.core.interactiveshell import InteractiveShell


class CompleterOnDemand(InteractiveShell):
    """An ``InteractiveShell`` whose ``Completer`` is made on first use."""

    _completer: Any = None
    configurables: list[Any]  # IPython's list holds any Configurable, not only shells

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.configurables = _Configurables(self, self.configurables)

    def init_completer(self) -> None:
        """Called by ``InteractiveShell.__init__``: only prepare (see ``Completer``)."""
        self._completer_lock = threading.RLock()

    @property
    def Completer(self) -> Any:  # IPython's name
        if self._completer is None:
            with self._completer_lock:
                if self._completer is None:
                    super().init_completer()  # assigns Completer, registers its hooks
        return self._completer

    @Completer.setter
    def Completer(self, value: Any) -> None:
        self._completer = value


class _Configurables(list[Any]):
    """``shell.configurables``: iterating over it builds the shell's completer first."""

    def __init__(self, shell: CompleterOnDemand, items: list[Any]) -> None:
        super().__init__(items)
        self._shell = shell

    def __iter__(self) -> Iterator[Any]:
        self._shell.Completer  # noqa: B018  # builds it; it appends itself to this list
        return super().__iter__()


__all__ = ["CompleterOnDemand"]
