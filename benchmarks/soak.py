"""Soak: many mixed cells in one kernel; does it leak memory, threads or file descriptors?

    python benchmarks/soak.py [--cells 10000]      (``make soak``)

Runs N cells (default 10,000) in one kernel, one after another: prints, expressions,
errors, ``# task`` and ``# thread`` cells, and every 50th cell an interrupt of a cell that
awaits, blocks the main thread or blocks a worker thread. The kernel's RSS, thread count
and open file descriptors (``/proc/PID/status``, ``/proc/PID/fd``) are read after a
warm-up (a tenth of the cells, at least 100) and at the end. Exits non-zero when RSS grew
by more than ``--max-rss-growth`` MB (default 50) or the thread or fd count grew.

Idle worker threads linger in trio's thread cache for a few seconds after a ``# thread``
cell; both samples are therefore taken right after the same kind of cell, and the final
thread count is allowed a few seconds to settle back to the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

TIMEOUT = 30.0
SETTLE = 15.0

INTERRUPTED = [
    "import trio\nprint('go', flush=True)\nawait trio.sleep(60)",
    "import time\nprint('go', flush=True)\ntime.sleep(60)",
    "# thread\nimport time\nprint('go', flush=True)\nwhile True:\n    time.sleep(0.01)",
    "# task\nimport trio\nprint('go', flush=True)\nawait trio.sleep(60)",
]


def cell_for(i: int) -> tuple[str, str]:
    """The ``i``-th soak cell and the reply status it must get (``interrupt`` for interrupted)."""
    if i % 50 == 49:
        return INTERRUPTED[(i // 50) % len(INTERRUPTED)], "interrupt"
    kind = i % 10
    if kind == 0:
        return "1/0", "error"
    if kind == 1:
        return f"# task\nimport trio\nawait trio.sleep(0)\nprint('task', {i})", "ok"
    if kind == 2:
        return f"# thread\nprint(sum(range({i} % 1000)))", "ok"
    if kind == 3:
        return f"data = list(range({i} % 5000))\nlen(data)", "ok"
    if kind == 4:
        return "raise ValueError('soak')", "error"
    if kind == 5:
        return f"for k in range(20):\n    print('line', k, {i})", "ok"
    return f"x = {i}\nx * 2", "ok"


@dataclass
class Sample:
    rss_mb: float
    threads: int
    fds: int


@dataclass
class SoakReport:
    cells: int
    seconds: float
    before: Sample
    after: Sample
    max_rss_growth_mb: float
    failures: list[str] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return self.after.rss_mb - self.before.rss_mb

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        b, a = self.before, self.after
        return (f"soak: {self.cells} cells in {self.seconds:.1f} s ({self.cells / self.seconds:.0f} cells/s); "
                f"RSS {b.rss_mb:.1f} -> {a.rss_mb:.1f} MB ({self.rss_growth_mb:+.1f} MB after warm-up, "
                f"limit {self.max_rss_growth_mb:g}); threads {b.threads} -> {a.threads}; fds {b.fds} -> {a.fds}"
                + ("" if self.ok else "; FAILED: " + "; ".join(self.failures)))


def sample(pid: int) -> Sample:
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":\t" in line)
    return Sample(rss_mb=int(status["VmRSS"].split()[0]) / 1024, threads=int(status["Threads"]),
                  fds=len(os.listdir(f"/proc/{pid}/fd")))


class _Driver:
    """Runs cells one at a time through a blocking client, with a deadline on every wait."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km = km
        self.kc = kc

    def _until_idle(self, msg_id: str, on_text: Callable[[str], None] | None = None) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.01))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and on_text is not None:
                on_text(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return

    def _reply(self, msg_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]

    def run(self, code: str, expect: str) -> str | None:
        """Run one cell; return a description of what went wrong, or None."""
        msg_id = self.kc.execute(code)
        if expect == "interrupt":
            seen: list[str] = []
            deadline = time.monotonic() + TIMEOUT
            while "go" not in "".join(seen):
                if time.monotonic() > deadline:
                    return f"cell {code!r} never started"
                msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.01))
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                    seen.append(msg["content"]["text"])
            interrupt = self.kc.session.msg("interrupt_request", {})
            self.kc.control_channel.send(interrupt)
            reply = self._reply(msg_id)
            self._until_idle(msg_id)
            self._control_reply(interrupt["header"]["msg_id"])
            if reply["status"] != "error" or reply.get("ename") != "KeyboardInterrupt":
                return f"interrupted cell {code!r} replied {reply}"
            return None
        self._until_idle(msg_id)
        reply = self._reply(msg_id)
        if reply["status"] != expect:
            return f"cell {code!r} replied {reply['status']}, expected {expect}"
        return None

    def _control_reply(self, msg_id: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self.kc.control_channel.get_msg(timeout=max(deadline - time.monotonic(), 0.01))
            if msg["parent_header"].get("msg_id") == msg_id:
                return


def run_soak(cells: int = 10_000, *, warmup: int | None = None, max_rss_growth_mb: float = 50.0,
             kernel_name: str = "trio", progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run ``cells`` mixed cells in one fresh kernel and report its resource use."""
    warmup = max(100, cells // 10) if warmup is None else warmup
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trio-kernel-soak-") as tmp:
        km = KernelManager(kernel_name=kernel_name)
        km.start_kernel(env={**os.environ, "IPYTHONDIR": str(Path(tmp) / "ipython")})
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=TIMEOUT)
            pid = int(km.provisioner.process.pid)  # type: ignore[union-attr]
            driver = _Driver(km, kc)
            start = time.monotonic()
            before: Sample | None = None
            for i in range(cells + warmup):
                code, expect = cell_for(i)
                problem = driver.run(code, expect)
                if problem is not None:
                    failures.append(f"cell {i}: {problem}")
                    if len(failures) > 10:
                        break
                if i == warmup - 1:
                    driver.run("# thread\npass", "ok")
                    before = sample(pid)
                    start = time.monotonic()
                if progress is not None and i >= warmup and (i - warmup + 1) % 1000 == 0:
                    progress(f"{i - warmup + 1} cells, RSS {sample(pid).rss_mb:.1f} MB")
            seconds = time.monotonic() - start
            driver.run("# thread\npass", "ok")
            after = sample(pid)
            if before is None:  # stopped early, during the warm-up
                before = after
            deadline = time.monotonic() + SETTLE
            while (after.threads > before.threads or after.fds > before.fds) and time.monotonic() < deadline:
                time.sleep(0.25)  # polling /proc for idle cached threads to exit, not synchronising
                after = sample(pid)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
            km.cleanup_resources()
    report = SoakReport(cells=cells, seconds=seconds, before=before, after=after,
                        max_rss_growth_mb=max_rss_growth_mb, failures=failures)
    if report.rss_growth_mb > max_rss_growth_mb:
        failures.append(f"RSS grew by {report.rss_growth_mb:.1f} MB")
    if after.threads > before.threads:
        failures.append(f"threads grew from {before.threads} to {after.threads}")
    if after.fds > before.fds:
        failures.append(f"open fds grew from {before.fds} to {after.fds}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--max-rss-growth", type=float, default=50.0, help="MB")
    parser.add_argument("--kernel", default="trio", help="kernelspec name")
    args = parser.parse_args(argv)
    report = run_soak(args.cells, warmup=args.warmup, max_rss_growth_mb=args.max_rss_growth,
                      kernel_name=args.kernel, progress=lambda text: print(text, flush=True))
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
