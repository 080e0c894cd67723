"""The pure run-mode table: which loop serves a request, and how.

No I/O and no state: ``route(msg_type, channel, mode)`` is a total function, so the
dispatcher's policy can be tested exhaustively (see ``tests/test_routing.py``) and printed
in the README with ``python -m kernel routes``.

Rules, in words:

- Everything on the control channel is served by the I/O thread at once (``io``/``task``):
  interrupt, shutdown, debug and kernel_info must answer while user code blocks.
- Requests that never touch user code (kernel_info, comm_info) are served by the I/O
  thread at once; ones that read the user namespace and may be slow (complete, inspect,
  is_complete, history: jedi can take a second) run in a worker thread owned by the I/O
  loop, so they answer while a cell blocks without stalling the sockets.
- ``execute_request`` runs on the shell loop in the cell's run mode.
- Comm messages run on the shell loop as a task, so a widget update is applied while a
  cell awaits, and in the thread that owns the user's objects.
- Anything else (unknown types included) goes to the shell loop's queue; the handler
  answers unknown types with an error log and no reply, as the spec requires.
"""

from __future__ import annotations

import attrs

from .._core.enums import Channel, RunMode, Where

IO_REQUESTS: frozenset[str] = frozenset(
    {"kernel_info_request", "comm_info_request", "connect_request", "shutdown_request", "interrupt_request"}
)
"""Shell-channel requests answered by the I/O loop itself."""

READER_REQUESTS: frozenset[str] = frozenset(
    {"complete_request", "inspect_request", "is_complete_request", "history_request"}
)
"""Shell-channel requests answered in a worker thread of the I/O loop."""

COMM_MESSAGES: frozenset[str] = frozenset({"comm_open", "comm_msg", "comm_close"})


@attrs.frozen
class Route:
    """Where and how one request runs."""

    where: Where
    how: RunMode


def route(msg_type: str, channel: Channel, mode: RunMode) -> Route:
    """Return the route of a request; ``mode`` is the cell's run mode (execute only)."""
    if channel is Channel.CONTROL or msg_type in IO_REQUESTS:
        return Route(Where.IO, RunMode.TASK)
    if msg_type in READER_REQUESTS:
        return Route(Where.IO, RunMode.THREAD)
    if msg_type == "execute_request":
        return Route(Where.SHELL, mode)
    if msg_type in COMM_MESSAGES:
        return Route(Where.SHELL, RunMode.TASK)
    return Route(Where.SHELL, RunMode.QUEUE)


CONTROL_REQUESTS: frozenset[str] = frozenset(
    {
        "kernel_info_request",
        "connect_request",
        "interrupt_request",
        "shutdown_request",
        "usage_request",
        "debug_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)
"""What frontends send on the control channel."""


def table() -> list[tuple[str, Channel, RunMode, Route]]:
    """The rows worth publishing: shell messages, then control requests."""
    rows = []
    for msg_type in sorted(IO_REQUESTS | READER_REQUESTS | COMM_MESSAGES | {"execute_request"}):
        modes = list(RunMode) if msg_type == "execute_request" else [RunMode.QUEUE]
        rows.extend((msg_type, Channel.SHELL, m, route(msg_type, Channel.SHELL, m)) for m in modes)
    for msg_type in sorted(CONTROL_REQUESTS):
        rows.append((msg_type, Channel.CONTROL, RunMode.QUEUE, route(msg_type, Channel.CONTROL, RunMode.QUEUE)))
    return rows
