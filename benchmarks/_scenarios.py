"""The scenarios: one function per measurement, each run on one kernel per call.

A scenario function does one round on one kernel and returns an Outcome; the
runner in bench.py alternates kernels round by round. A TimeoutError escaping a
scenario is recorded as a failure and the kernel is replaced before the next round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter
from typing import IO, Any

from _harness import Kernel, Msg

INTERRUPT_TIMEOUT = 10.0
BLOCK_SECONDS = 3
DISPLAY_CHARS = 20_000_000
GO = "print('go', flush=True)\n"


@dataclass(frozen=True)
class Plan:
    """How much work each scenario does; --quick swaps in the small plan."""

    startups: int = 5
    round_trips: int = 100
    round_trip_rounds: int = 5
    pipelined: int = 2_000
    pipelined_rounds: int = 3
    flood_lines: int = 200_000
    flood_rounds: int = 2
    display_rounds: int = 3
    interrupt_rounds: int = 3
    blocked_rounds: int = 3


FULL = Plan()
QUICK = Plan(
    startups=3,
    round_trips=50,
    round_trip_rounds=2,
    pipelined=500,
    pipelined_rounds=1,
    flood_lines=20_000,
    flood_rounds=1,
    display_rounds=1,
    interrupt_rounds=1,
    blocked_rounds=1,
)


@dataclass
class Outcome:
    """One round on one kernel: values in the scenario's unit, and what went wrong."""

    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    restart: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """The goal for the first kernel: a ratio to an anchor kernel, or an absolute cap.

    ``anchor`` names the kernelspec the ratio is taken against (``xpython`` for the
    targets set against xeus-python); when that kernel is not in the run, or for
    ``anchor=None``, the second kernel is the anchor. ``first_max`` caps every sample,
    ``median_max`` the first kernel's median.
    """

    ratio_max: float | None = None
    ratio_min: float | None = None
    first_max: float | None = None
    median_max: float | None = None
    anchor: str | None = None

    def text(self) -> str:
        against = f" {self.anchor}" if self.anchor else ""
        if self.ratio_max is not None:
            return f"≤{self.ratio_max:g}x{against}"
        if self.ratio_min is not None:
            return f"≥{self.ratio_min:g}x{against}"
        if self.median_max is not None:
            return f"median ≤{self.median_max:g}"
        return f"≤{self.first_max:g} each"

    def met(self, ratio: float | None, first: list[float]) -> bool | None:
        """None when there is nothing to judge (a kernel failed or gave no values)."""
        if self.first_max is not None:
            return max(first) <= self.first_max if first else None
        if self.median_max is not None:
            return statistics.median(first) <= self.median_max if first else None
        if ratio is None:
            return None
        if self.ratio_max is not None:
            return ratio <= self.ratio_max
        return self.ratio_min is not None and ratio >= self.ratio_min


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str
    rounds: int
    run: Callable[[Kernel], Outcome]
    target: Target | None = None
    p99: bool = False


def startup(name: str, log: IO[bytes] | None) -> tuple[float, float, float]:
    """Fresh kernel: seconds to the first kernel_info_reply and to the first execute_reply
    (both from launch), then MiB resident once it has run that cell."""
    kernel = Kernel(name, log)
    try:
        seconds = kernel.start(timeout=60)
        first_cell = kernel.warm_up(timeout=30)
        return seconds, first_cell, kernel.rss_mb()
    finally:
        kernel.close()


def pass_round_trip(kernel: Kernel, count: int) -> Outcome:
    """Per-request overhead: execute 'pass', wait for reply and idle, repeat (ms)."""
    values = []
    for _ in range(count):
        t0 = perf_counter()
        track = kernel.run_cell("pass", timeout=10)
        values.append((track.done_at - t0) * 1e3)
    return Outcome(values)


def pipelined(kernel: Kernel, count: int) -> Outcome:
    """Queueing throughput: send every request up front, count replies (req/s)."""
    pending: set[str] = set()
    errors = 0
    last_reply = 0.0

    def on_msg(msg: Msg) -> None:
        nonlocal errors, last_reply
        if msg.msg_type == "execute_reply" and msg.parent_id in pending:
            pending.discard(msg.parent_id)
            errors += msg.content.get("status") != "ok"
            last_reply = msg.received_at

    t0 = perf_counter()
    with kernel.listening(on_msg):
        for _ in range(count):
            last_id = kernel.execute("x = 1")
            pending.add(last_id)
            kernel.pump(0)  # drain as we go so no socket reaches its high-water mark
        try:
            kernel.wait_until(lambda: not pending, 60, "")
        except TimeoutError:
            return Outcome(failures=[f"{len(pending)} replies missing"], restart=True)
    kernel.await_done(last_id, 10)
    failures = [f"{errors} error replies"] if errors else []
    return Outcome([count / (last_reply - t0)], failures)


class LineChecker:
    """Reassembles stdout into lines and checks they read 0, 1, 2, ... in order."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.expected = 0
        self.lost = 0
        self.out_of_order = 0
        self.garbled = 0
        self.messages = 0
        self._partial = ""

    def feed(self, msg: Msg) -> None:
        if msg.msg_type != "stream" or msg.content.get("name") != "stdout":
            return
        self.messages += 1
        lines = (self._partial + msg.content["text"]).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        value = int(line) if line.isdigit() else -1
        if not 0 <= value < self.total:  # two lines run together, or not a number at all
            self.garbled += 1
        elif value >= self.expected:
            self.lost += value - self.expected
            self.expected = value + 1
        else:
            self.out_of_order += 1

    def finish(self) -> list[str]:
        """Failures, if any: every gap and every line past the end counts as lost."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        lost = self.lost + max(0, self.total - self.expected)
        failures = [f"{lost} lines lost"] if lost else []
        if self.out_of_order:
            failures.append(f"{self.out_of_order} lines out of order")
        if self.garbled:
            failures.append(f"{self.garbled} lines garbled")
        return failures


def stream_flood(kernel: Kernel, lines: int) -> Outcome:
    """Output back-pressure: print lines one by one, wait for idle (s)."""
    checker = LineChecker(lines)
    timeout = max(30.0, lines / 2_000)
    t0 = perf_counter()
    with kernel.listening(checker.feed):
        try:
            track = kernel.run_cell(f"for i in range({lines}):\n    print(i)", timeout)
        except TimeoutError as exc:
            return Outcome(failures=[str(exc), *checker.finish()], restart=True)
    notes = {"stream_messages": checker.messages}
    return Outcome([track.done_at - t0], checker.finish(), notes=notes)


def big_display(kernel: Kernel) -> Outcome:
    """One 20 MB display_data through iopub: serialisation and send cost (s)."""
    sizes: list[int] = []

    def on_msg(msg: Msg) -> None:
        if msg.msg_type == "display_data":
            sizes.append(len(msg.raw_content))

    code = f"from IPython.display import display\ndisplay({{'text/plain': 'x' * {DISPLAY_CHARS}}}, raw=True)"
    t0 = perf_counter()
    with kernel.listening(on_msg):
        track = kernel.run_cell(code, timeout=60)
    failures = [] if any(s >= DISPLAY_CHARS for s in sizes) else ["display_data missing"]
    return Outcome([track.done_at - t0], failures)


INTERRUPT_CELLS = {
    "async": {
        "trio": "import trio\n" + GO + "await trio.sleep(30)",
        "asyncio": "import asyncio\n" + GO + "await asyncio.sleep(30)",
    },
    "sleep": {"any": "import time\n" + GO + "time.sleep(30)"},
    "busy": {"any": GO + "while True:\n    pass"},
}


def interrupt_cell(variant: str, implementation: str) -> str:
    """Pick the cell: trio for trio-kernel, asyncio for any other kernel."""
    cells = INTERRUPT_CELLS[variant]
    if "any" in cells:
        return cells["any"]
    return cells["trio" if implementation == "trio-kernel" else "asyncio"]


def interrupt(kernel: Kernel, variant: str) -> Outcome:
    """Interrupt a running cell; time from interrupt_kernel() to execute_reply (ms)."""
    msg_id = kernel.start_cell(interrupt_cell(variant, kernel.implementation), timeout=10)
    t0 = perf_counter()
    kernel.km.interrupt_kernel()
    track = kernel.await_done(msg_id, INTERRUPT_TIMEOUT)
    assert track.reply is not None
    status = track.reply.content.get("status")
    return Outcome([(track.reply.received_at - t0) * 1e3], notes={"reply_status": status})


def blocked_request(kernel: Kernel, channel: str, msg_type: str, content: dict[str, Any]) -> Outcome:
    """Latency of one request sent while a cell blocks in time.sleep (ms)."""
    cell = kernel.start_cell("import time\n" + GO + f"time.sleep({BLOCK_SECONDS})", timeout=10)
    t0 = perf_counter()
    request = kernel.send(channel, msg_type, content)
    track = kernel.tracks[request]
    timeout = BLOCK_SECONDS + 10
    kernel.wait_until(lambda: track.reply is not None, timeout, f"no reply in {timeout} s")
    assert track.reply is not None
    kernel.await_done(cell, timeout)
    return Outcome([(track.reply.received_at - t0) * 1e3])


def all_scenarios(plan: Plan) -> list[Scenario]:
    """Everything after startup and RSS, in the order they run and print."""
    complete = {"code": "import o", "cursor_pos": 8}
    return [
        Scenario(
            "pass_round_trip",
            "pass round trip",
            "ms",
            plan.round_trip_rounds,
            partial(pass_round_trip, count=plan.round_trips),
            Target(ratio_max=0.5, anchor="xpython"),
            p99=True,
        ),
        Scenario(
            "pipelined",
            "pipelined x = 1",
            "req/s",
            plan.pipelined_rounds,
            partial(pipelined, count=plan.pipelined),
            Target(ratio_min=2),
        ),
        Scenario(
            "stream_flood",
            f"stream flood {plan.flood_lines:,} lines",
            "s",
            plan.flood_rounds,
            partial(stream_flood, lines=plan.flood_lines),
            Target(ratio_max=0.5, anchor="python3"),
        ),
        Scenario("display_20mb", "20 MB display", "s", plan.display_rounds, big_display),
        *(
            Scenario(
                f"interrupt_{variant}",
                title,
                "ms",
                plan.interrupt_rounds,
                partial(interrupt, variant=variant),
                target,
            )
            for variant, title, target in [
                ("async", "interrupt await sleep", Target(median_max=3)),
                ("sleep", "interrupt time.sleep", Target(first_max=50)),
                ("busy", "interrupt busy loop", Target(median_max=15)),
            ]
        ),
        Scenario(
            "complete_blocked",
            "complete while blocked",
            "ms",
            plan.blocked_rounds,
            partial(
                blocked_request,
                channel="shell",
                msg_type="complete_request",
                content=complete,
            ),
        ),
        Scenario(
            "control_info_blocked",
            "control kernel_info while blocked",
            "ms",
            plan.blocked_rounds,
            partial(
                blocked_request,
                channel="control",
                msg_type="kernel_info_request",
                content={},
            ),
        ),
    ]
