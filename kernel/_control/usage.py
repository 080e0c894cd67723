"""``usage_request`` and ``connect_request``: replies with the fields ipykernel sends.

``usage_request`` (control channel) is what jupyter-resource-usage's kernel usage panel
sends every few seconds; ``connect_request`` (shell or control) asks for the kernel's ports.

The reply builders are pure. ``UsageMeter`` measures with psutil, imported the first time
a usage request arrives so that start-up does not pay for it; it keeps each process's
``psutil.Process`` between requests, because a process's CPU percentage is measured
*since the previous call on the same object* (the first call always says 0.0). Its
``measure`` reads ``/proc`` and so runs in a worker thread of the I/O loop, one at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import trio

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")


def connect_reply(ports: Mapping[str, int]) -> dict[str, Any]:
    """The ``connect_reply`` content: the five port numbers and ``status: ok``.

    Only the ports are copied: the connection info also holds the signing key.
    """
    content: dict[str, Any] = {name: ports[name] for name in PORT_NAMES if name in ports}
    content["status"] = "ok"
    return content


def usage_reply(
    *,
    hostname: str,
    pid: int,
    cpu_count: int | None,
    kernel_cpu: float | None = None,
    kernel_memory: int | None = None,
    host_cpu_percent: float | None = None,
    host_virtual_memory: Mapping[str, int | float] | None = None,
) -> dict[str, Any]:
    """The ``usage_reply`` content, with ipykernel's field names and omissions.

    Without psutil only ``hostname``, ``pid`` and ``cpu_count`` are sent. A host CPU
    percentage of 0.0 is left out: psutil's first system-wide reading is always 0.0.
    """
    content: dict[str, Any] = {"hostname": hostname, "pid": pid}
    if kernel_cpu is not None:
        content["kernel_cpu"] = kernel_cpu
    if kernel_memory is not None:
        content["kernel_memory"] = kernel_memory
    if host_cpu_percent:
        content["host_cpu_percent"] = host_cpu_percent
    content["cpu_count"] = cpu_count
    if host_virtual_memory is not None:
        content["host_virtual_memory"] = dict(host_virtual_memory)
    return content


class UsageMeter:
    """The kernel process tree's CPU and memory, for one kernel (built and awaited on the I/O loop)."""

    def __init__(self) -> None:
        self._processes: dict[int, Any] = {}
        self._limiter = trio.CapacityLimiter(1)

    async def reply(self) -> dict[str, Any]:
        """Measure in a worker thread (``/proc`` reads) and return the ``usage_reply`` content."""
        return await trio.to_thread.run_sync(self.measure, limiter=self._limiter)

    def measure(self) -> dict[str, Any]:
        """Measure now (blocking; one call at a time): this process and all its descendants.

        CPU is the sum of the processes' percentages (100 is one core), memory the sum of
        their PSS where the platform has it (shared pages counted once), else RSS.
        """
        hostname, pid = socket.gethostname(), os.getpid()
        try:
            import psutil
        except ImportError:
            return usage_reply(hostname=hostname, pid=pid, cpu_count=os.cpu_count())
        me = psutil.Process()
        tree = [me, *me.children(recursive=True)]
        # Reuse the objects seen before, so that their cpu_percent covers the time since the
        # last request; processes that ended are forgotten.
        self._processes = {p.pid: self._processes.get(p.pid, p) for p in tree}
        cpu = 0.0
        memory = 0
        for process in self._processes.values():
            try:
                cpu += process.cpu_percent(None)
                info = process.memory_full_info()
                memory += getattr(info, "pss", info.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue  # a child that ended (or is not ours to read) between listing and reading
        return usage_reply(
            hostname=hostname,
            pid=pid,
            cpu_count=psutil.cpu_count(logical=True),
            kernel_cpu=cpu,
            kernel_memory=memory,
            host_cpu_percent=psutil.cpu_percent(None),
            host_virtual_memory=psutil.virtual_memory()._asdict(),
        )
