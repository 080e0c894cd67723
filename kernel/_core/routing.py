"""The dispatch table: for each (message type, channel), who serves it, where and how.

This is the one place that knows the message types. The I/O loop reads it to decide where
a request goes, the shell runner to pick the handler, ``python -m kernel routes`` and the
README print it, and the tests (routing, fuzz) take their type lists from it: adding a
message type is one row in ``ROWS``. Pure: no I/O, no state.

Rules, in words:

- Control requests are served by the I/O thread at once (``io``/``task``): interrupt,
  shutdown, debug and kernel_info must answer while user code blocks.
- Requests that never touch user code (kernel_info, comm_info, connect, usage) are served by the I/O
  thread at once; ones that read the user namespace and may be slow (complete, inspect,
  is_complete, history: jedi can take a second) run in a worker thread owned by the I/O
  loop, so they answer while a cell blocks without stalling the sockets.
- ``execute_request`` runs on a shell loop in the cell's run mode (``how`` is None in its
  row: the cell's options decide). The spec makes control "identical to Shell" for the
  shell's requests, so execute, complete, inspect, is_complete, history and comm_info are
  answered on control too (as ipykernel does), in the same way.
- Comm messages run on the shell loop as a task, so a widget update is applied while a
  cell awaits, and in the thread that owns the user's objects.
- Anything else (unknown types) goes to the shell loop's queue when it came on shell (it
  gets busy, an error log and idle in its turn, and no reply, as ipykernel does), and is
  logged by the I/O loop when it came on control or stdin.
"""

from __future__ import annotations

import enum

import attrs

from .._core.enums import Channel, RunMode, Where


class Handler(enum.StrEnum):
    """What serves a request; the I/O loop and the runner each map these to their code."""

    EXECUTE = "execute"
    COMM = "comm"
    KERNEL_INFO = "kernel_info"
    COMM_INFO = "comm_info"
    CONNECT = "connect"
    USAGE = "usage"
    INTERRUPT = "interrupt"
    SHUTDOWN = "shutdown"
    DEBUG = "debug"
    CREATE_SUBSHELL = "create_subshell"
    DELETE_SUBSHELL = "delete_subshell"
    LIST_SUBSHELL = "list_subshell"
    COMPLETE = "complete"
    INSPECT = "inspect"
    IS_COMPLETE = "is_complete"
    HISTORY = "history"
    INPUT_REPLY = "input_reply"
    UNKNOWN = "unknown"


@attrs.frozen
class Route:
    """Where and how one request runs."""

    where: Where
    how: RunMode


@attrs.frozen
class Row:
    """One line of the dispatch table."""

    msg_type: str
    channel: Channel
    handler: Handler
    where: Where
    how: RunMode | None
    """None: the cell's run mode decides (execute requests)."""
    reply: str | None
    """The reply's message type; None when the spec wants no reply."""


def _rows() -> list[Row]:
    io, shell = Where.IO, Where.SHELL
    task, thread = RunMode.TASK, RunMode.THREAD
    shared = [  # "identical to Shell": served the same way on shell and control
        ("execute_request", Handler.EXECUTE, shell, None),
        ("kernel_info_request", Handler.KERNEL_INFO, io, task),
        ("comm_info_request", Handler.COMM_INFO, io, task),
        ("connect_request", Handler.CONNECT, io, task),
        ("complete_request", Handler.COMPLETE, io, thread),
        ("inspect_request", Handler.INSPECT, io, thread),
        ("is_complete_request", Handler.IS_COMPLETE, io, thread),
        ("history_request", Handler.HISTORY, io, thread),
        ("interrupt_request", Handler.INTERRUPT, io, task),
        ("shutdown_request", Handler.SHUTDOWN, io, task),
    ]
    control_only = [
        ("usage_request", Handler.USAGE, io, task),  # measures in a worker thread of its own
        ("debug_request", Handler.DEBUG, io, task),
        ("create_subshell_request", Handler.CREATE_SUBSHELL, io, task),
        ("delete_subshell_request", Handler.DELETE_SUBSHELL, io, task),
        ("list_subshell_request", Handler.LIST_SUBSHELL, io, task),
    ]
    comms = [(t, Handler.COMM, shell, task) for t in ("comm_open", "comm_msg", "comm_close")]
    rows = []
    for channel, entries in ((Channel.SHELL, shared + comms), (Channel.CONTROL, shared + control_only)):
        for msg_type, handler, where, how in entries:
            reply = msg_type.removesuffix("_request") + "_reply" if msg_type.endswith("_request") else None
            rows.append(Row(msg_type, channel, handler, where, how, reply))
    rows.append(Row("input_reply", Channel.STDIN, Handler.INPUT_REPLY, io, task, None))
    return rows


ROWS: tuple[Row, ...] = tuple(_rows())
"""Every message type the kernel handles, per channel."""

_BY_KEY: dict[tuple[str, Channel], Row] = {(row.msg_type, row.channel): row for row in ROWS}


def lookup(msg_type: str, channel: Channel) -> Row:
    """The row of a message; unknown types get an ``unknown`` row (no reply)."""
    row = _BY_KEY.get((msg_type, channel))
    if row is not None:
        return row
    if channel is Channel.SHELL:
        return Row(msg_type, channel, Handler.UNKNOWN, Where.SHELL, RunMode.QUEUE, None)
    return Row(msg_type, channel, Handler.UNKNOWN, Where.IO, RunMode.TASK, None)


def route(msg_type: str, channel: Channel, mode: RunMode) -> Route:
    """Return the route of a request; ``mode`` is the cell's run mode (execute only)."""
    row = lookup(msg_type, channel)
    return Route(row.where, mode if row.how is None else row.how)


def table() -> list[tuple[str, Channel, RunMode, Route]]:
    """The rows worth publishing (shell, then control), one per cell mode for execute."""
    out: list[tuple[str, Channel, RunMode, Route]] = []
    for channel in (Channel.SHELL, Channel.CONTROL):
        for row in sorted((r for r in ROWS if r.channel is channel), key=lambda r: r.msg_type):
            modes = list(RunMode) if row.how is None else [RunMode.QUEUE]
            out.extend((row.msg_type, channel, m, route(row.msg_type, channel, m)) for m in modes)
    return out
