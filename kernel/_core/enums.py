"""Enumerations shared by the pure core and the I/O layers.

`StrEnum` members compare equal to their wire strings, so a value read off the wire can be
looked up directly (``Channel("shell")``) and a member can be written straight into JSON.
"""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    """The Jupyter sockets a request can arrive on."""

    SHELL = "shell"
    CONTROL = "control"
    STDIN = "stdin"
    IOPUB = "iopub"


class RunMode(enum.StrEnum):
    """How an execute request runs, chosen per cell (see ``_cellmode``).

    - ``queue``: one after another in arrival order, on the shell's trio loop (the default).
    - ``task``: at once, as a trio task beside the queue and other tasks.
    - ``thread``: in a worker thread, with its own trio loop for top-level ``await``.
    - ``blocking``: inside the dispatcher, so nothing else on that shell starts until it ends.
    """

    QUEUE = "queue"
    TASK = "task"
    THREAD = "thread"
    BLOCKING = "blocking"


class Where(enum.StrEnum):
    """Which trio loop serves a request.

    ``io`` is the kernel's I/O thread, which owns every socket and never runs user code, so
    it answers while user code holds the shell thread. ``shell`` is the loop that owns the
    user namespace: the main thread for the main shell, a subshell's own thread otherwise.
    """

    IO = "io"
    SHELL = "shell"
