"""The kernel's handle on its debugger: the debugger itself is built on the first request.

Most kernels are never debugged, so the debugger's modules (``debugger``, ``client``,
``variables``, ``dap``, ``gate``, ``start``, ``stops``) are not imported at start-up:
``LazyDebugger`` has the interface the I/O loop and ``open_kernel`` use (``available``,
``handle``, ``end_soon``, ``close``) and builds the ``Debugger`` when the first
``debug_request`` arrives. debugpy itself is imported later still, on ``initialize``.
Runs where ``Debugger`` runs: ``handle`` and ``end_soon`` on the I/O loop, ``close`` on
the kernel's loop.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._debugger.debugger import Debugger
    from .._shell.shell import TrioShell


class LazyDebugger:
    """A ``Debugger`` made on first use; until then ending or closing it does nothing."""

    def __init__(self, shell: TrioShell, publish_event: Callable[[dict[str, Any]], None],
                 spawn: Callable[[Callable[[], Awaitable[None]]], None]) -> None:
        self._arguments = (shell, publish_event, spawn)
        self._debugger: Debugger | None = None

    @functools.cached_property
    def available(self) -> bool:
        """Whether debugpy can be imported (``kernel_info`` advertises the debugger then)."""
        return importlib.util.find_spec("debugpy") is not None

    async def handle(self, content: dict[str, Any]) -> dict[str, Any]:
        """``Debugger.handle``, the debugger built first if this is the first request."""
        if self._debugger is None:
            from .._debugger.debugger import Debugger

            self._debugger = Debugger(*self._arguments)
        return await self._debugger.handle(content)

    def end_soon(self) -> None:
        if self._debugger is not None:
            self._debugger.end_soon()

    async def close(self) -> None:
        if self._debugger is not None:
            await self._debugger.close()
