"""Exit when the process that started the kernel dies.

Frontends set ``JPY_PARENT_PID``; when that process is gone (the kernel was re-parented),
the kernel has no one to serve and must not linger. Polled twice a second: there is no
portable notification for a parent's death that works for a non-direct parent.
"""

from __future__ import annotations

import os

import trio


def _parent_pid() -> int | None:
    value = os.environ.get("JPY_PARENT_PID", "")
    return int(value) if value.isdigit() and int(value) > 1 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def watch_parent(interval: float = 0.5) -> None:
    """Return when the parent named by JPY_PARENT_PID (or the original parent) is gone."""
    pid = _parent_pid()
    original_ppid = os.getppid()
    if pid is None and original_ppid <= 1:
        await trio.sleep_forever()
    while True:
        await trio.sleep(interval)
        if pid is not None and not _alive(pid):
            return
        if pid is None and os.getppid() != original_ppid:
            return
