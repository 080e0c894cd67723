"""Processes seen through /proc: descendants of a process and waiting for them to end.

Kernels are started in sessions of their own, so a process group misses them; the parent
links in /proc do not. A process is named by (pid, start time) so a reused pid is not
mistaken for it. Used by the console test and the JupyterLab end-to-end test.
"""

from __future__ import annotations

import time
from pathlib import Path

Process = tuple[int, str]
"""A process as (pid, start time in clock ticks since boot), immune to pid reuse."""


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces.
    return stat.rpartition(")")[2].split()


def descendants(root: int) -> set[Process]:
    """Return every living process below ``root``.

    Kernels are started in a session of their own, so a process group would
    miss them; the parent links in /proc do not.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[Process] = set()
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        fields = _stat_fields(pid)
        if fields is not None:
            found.add((pid, fields[19]))
            pending.extend(children.get(pid, []))
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Return those of ``processes`` still running (zombies count as ended)."""
    living = set()
    for pid, started in processes:
        fields = _stat_fields(pid)
        if fields is not None and fields[19] == started and fields[0] != "Z":
            living.add((pid, started))
    return living


def wait_gone(processes: set[Process], timeout: float) -> set[Process]:
    """Poll until ``processes`` have ended or ``timeout`` passes; return survivors.

    A kernel may take a moment to exit after it replied to shutdown.
    """
    deadline = time.monotonic() + timeout
    survivors = alive(processes)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.05)
        survivors = alive(survivors)
    return survivors
