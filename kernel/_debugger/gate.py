"""Keeps requests that read a stopped thread's frames apart from requests that resume it.

debugpy answers ``variables`` (and the other frame requests) from the stopped thread
itself: it queues the request for that thread, which handles it while it waits. A request
that arrives just as the thread resumes stays queued, unanswered, and was seen to hold up
debugpy's later answers too (the next ``setBreakpoints`` included) until the kernel's
timeout. JupyterLab sends such requests after every stop, so a quick Continue hits this.

The gate, used on the I/O loop by ``Debugger.handle``: a resume request (continue, step)
first waits until the frame requests already sent to debugpy are answered; from then until
the next ``stopped`` event, frame requests are refused at once instead of being sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

RESUME_REQUESTS = frozenset({"continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue", "goto"})
"""Requests that let a stopped thread run."""
FRAME_REQUESTS = frozenset({"stackTrace", "scopes", "variables", "setVariable"})
"""Requests answered from a stopped thread's frames."""
FRAME_EVALUATIONS = frozenset({"evaluate", "setExpression"})
"""Requests answered from a stopped thread's frames when they name a ``frameId``."""


def reads_frames(command: object, arguments: dict[str, Any]) -> bool:
    """Whether a DAP request is answered by a stopped thread (pure)."""
    return command in FRAME_REQUESTS or (command in FRAME_EVALUATIONS and "frameId" in arguments)


class ResumeGate:
    """Frame requests in flight, and whether a resume was asked for since the last stop."""

    def __init__(self) -> None:
        self.resuming = False
        self._in_flight = 0
        self._quiet = trio.Event()
        self._quiet.set()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the gate open for one frame request (check ``resuming`` before entering)."""
        if self._in_flight == 0:
            self._quiet = trio.Event()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._quiet.set()

    async def resume(self) -> None:
        """Refuse new frame requests, then wait for those in flight to be answered."""
        self.resuming = True
        await self._quiet.wait()

    def stopped(self) -> None:
        """A thread stopped: its frames can be read again."""
        self.resuming = False
