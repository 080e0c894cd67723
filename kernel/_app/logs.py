"""Where the kernel's own log records go: the ``kernel`` logger, to the real stderr.

The root logger belongs to the user, as under ipykernel: with no handler of ours there,
``logging.getLogger("x").warning(...)`` in a cell reaches the cell's stderr (through
Python's last-resort handler, which writes to the current ``sys.stderr``), and
``logging.basicConfig(level=logging.INFO)`` in a cell takes effect. The kernel's records
never propagate to the root logger, so a user's handler does not see them and they always
reach the terminal or log file of the process that started the kernel: the handler
writes to its own duplicate of the original fd 2, so capturing fd 2 into cells
(``fdcapture``) does not capture them.
"""

from __future__ import annotations

import logging
import os
import sys

KERNEL_LOGGER = "kernel"


def to_process_stderr(text: str) -> None:
    """Write a line for the person who started the kernel, not for a cell: through the
    ``kernel`` logger's handler, whose stream is the original fd 2 (``sys.__stderr__`` may
    be a pipe into the running cell once fds are captured). Before ``configure`` it is
    ``sys.__stderr__``."""
    for handler in logging.getLogger(KERNEL_LOGGER).handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            print(text, file=stream, flush=True)
            return
    if sys.__stderr__ is not None:
        print(text, file=sys.__stderr__, flush=True)


def configure(level: str) -> None:
    """Send the ``kernel`` logger's records at ``level`` and above to the real stderr."""
    logger = logging.getLogger(KERNEL_LOGGER)
    stream = os.fdopen(os.dup(sys.__stderr__.fileno()), "w", buffering=1, encoding="utf-8",
                       errors="backslashreplace") if sys.__stderr__ is not None else None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(f"[trio-kernel {os.getpid()}] %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
