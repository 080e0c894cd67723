"""The JupyterLab debugger: ``debug_request`` bridged to debugpy (placeholder).

Contract with the rest of the kernel (``_ioloop`` and ``_kernel`` call only this):

- ``Debugger(shell, publish_event)`` is cheap: debugpy is imported on the first request.
- ``await debugger.handle(content) -> dict`` runs on the I/O loop for each ``debug_request``
  (content is the DAP request) and returns the ``debug_reply`` content (a DAP response).
- ``publish_event(body)`` sends a ``debug_event`` (a DAP event dict) on iopub; thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._shell import TrioShell


class Debugger:
    """Not implemented yet: every request gets a failed DAP response."""

    available = False

    def __init__(self, shell: TrioShell, publish_event: Callable[[dict[str, Any]], None]) -> None:
        self.shell = shell
        self.publish_event = publish_event

    async def handle(self, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "response",
            "request_seq": content.get("seq", 0),
            "success": False,
            "command": content.get("command", ""),
            "message": "the debugger is not available in this kernel yet",
            "seq": 0,
        }

    async def close(self) -> None:
        """Stop debugpy if it was started (called when the kernel shuts down)."""
