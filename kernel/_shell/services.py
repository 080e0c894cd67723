"""What a shell runner needs from the rest of the kernel, as one small object.

Built by ``_app.kernel`` once the I/O loop is up; passed to every runner so that runners
never reach into sockets or the I/O thread's objects, only into thread-safe outboxes,
tokens and callables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core.enums import Channel
from .._core.wire import Outgoing

if TYPE_CHECKING:
    from .._control.interrupt import RunningCell
    from .._shell.cell import Cell, LatestCell
    from .._transport.iopub import IOPubOutbox
    from .._transport.sockets import Outbox
    from .._transport.status import StatusTracker


@attrs.define(eq=False)
class Services:
    iopub: IOPubOutbox
    status_tracker: StatusTracker
    outboxes: dict[Channel, Outbox[Any]]
    io_token: trio.lowlevel.TrioToken
    watch_deadline: Callable[[RunningCell, float], None]
    """Ask the I/O loop to stop a cell after a number of seconds (thread-safe)."""
    stdin_request: Callable[[Cell, str, bool], str]
    """Ask the frontend for a line of input on behalf of a cell (blocks the caller)."""
    spawn_thread: Callable[[Callable[[], None], str], None]
    """Run a function in a new thread owned by the I/O loop (thread-safe): thread cells."""
    latest_cell: LatestCell
    """This kernel's latest queued cell, for output from threads no cell started."""
    default_timeout: float | None = None

    def publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any]) -> None:
        self.iopub.put(Outgoing(msg_type, content, parent))

    def busy(self, parent: dict[str, Any]) -> None:
        self.status_tracker.busy(parent)

    def idle(self, parent: dict[str, Any]) -> None:
        self.status_tracker.idle(parent)

    def reply(self, channel: Channel, msg_type: str, content: dict[str, Any],
              parent: dict[str, Any], idents: list[bytes], metadata: dict[str, Any] | None = None) -> None:
        self.outboxes[channel].put(Outgoing(msg_type, content, parent, idents, metadata))

