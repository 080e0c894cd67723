"""Which threads debugpy has stopped, as the frontend must see them (pure, no I/O).

The kernel passes debugpy's ``stopped`` and ``continued`` events on to the frontend, and
keeps the set of stopped threads for ``debugInfo`` (a reloaded page asks for it). One
repair: debugpy resumes every stopped thread on ``continue`` (its response says
``allThreadsContinued``) but does not always send a ``continued`` event for each (seen for
a ``# thread`` cell's worker while a ``variables`` request for it was pending). JupyterLab
hides its "Paused in Debugger" overlay, which blocks clicks on the notebook, only on that
event, so the tracker makes one from the response, and drops debugpy's late duplicate.
The caller feeds responses and events in the order debugpy sent them.
"""

from __future__ import annotations

from typing import Any


class StopTracker:
    """Stopped thread ids; fed by the DAP reader on the I/O loop."""

    def __init__(self) -> None:
        self.stopped: set[int] = set()

    def on_event(self, event: dict[str, Any]) -> bool:
        """Take in a DAP event; return whether to pass it on to the frontend."""
        name, body = event.get("event"), event.get("body") or {}
        if name == "stopped" and isinstance(body.get("threadId"), int):
            self.stopped.add(body["threadId"])
        elif name == "continued":
            resumed = self._resumed(body, body.get("threadId"))
            if not resumed:
                return False  # already reported when the continue response came
            self.stopped -= resumed
        return True

    def on_continue_response(self, arguments: dict[str, Any], response: dict[str, Any]) -> list[dict[str, Any]]:
        """Take in the response to a ``continue`` request sent with ``arguments``; return the
        ``continued`` events to send for the threads it resumed."""
        if not response.get("success"):
            return []
        resumed = sorted(self._resumed(response.get("body") or {}, arguments.get("threadId")))
        self.stopped -= set(resumed)
        return [{"seq": response.get("seq", 0), "type": "event", "event": "continued",
                 "body": {"threadId": thread_id, "allThreadsContinued": False}} for thread_id in resumed]

    def _resumed(self, body: dict[str, Any], thread_id: object) -> set[int]:
        """The stopped threads a ``continued`` event or ``continue`` response resumes.

        DAP: ``allThreadsContinued`` omitted means true.
        """
        if body.get("allThreadsContinued", True):
            return set(self.stopped)
        return {t for t in self.stopped if t == thread_id}
