"""Side-by-side benchmark of Jupyter kernels: trio-kernel against its anchors.

    python benchmarks/bench.py [--kernels trio,python3,xpython,async] [--quick] [--json PATH]

Kernels are launched from their kernelspecs through jupyter_client and measured
in alternation, round by round (A, B, C, A, B, C, ...), so machine drift hits all.
The first kernel is compared with each of the others (one ratio column each).
The kernel package is never imported: the kernels are separate processes.
Every kernel started here is shut down and reaped before exit, also on error
and Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import zmq
from _harness import Kernel
from _report import KernelResult, ScenarioResult, render_table
from _scenarios import (
    FULL,
    QUICK,
    Outcome,
    Plan,
    Scenario,
    Target,
    all_scenarios,
    startup,
)
from jupyter_client.kernelspec import KernelSpecManager

HERE = Path(__file__).resolve().parent
DISTRIBUTIONS = (
    "trio-kernel",
    "ipykernel",
    "pyzmq",
    "jupyter_client",
    "trio",
    "ipython",
    "xeus-python",
    "async-kernel",
)


@dataclass
class Slot:
    """A kernel position in the comparison; its process is replaced after a failure."""

    label: str
    name: str
    kernel: Kernel | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The three knobs; everything else is fixed so runs stay comparable."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kernels",
        default="trio,python3,xpython,async",
        help="kernelspec names, first one first; ratios are first/each other",
    )
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "latest.json",
        help="where to write the results (default: %(default)s)",
    )
    return parser.parse_args(argv)


def make_slots(spec: str) -> list[Slot]:
    """Labels are the kernelspec names, suffixed A/B when a kernel is compared with itself."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if len(names) < 2:
        raise SystemExit("--kernels needs at least two kernelspec names, e.g. trio,python3")
    check_kernelspecs(names)
    duplicated = len(set(names)) < len(names)
    return [Slot(f"{n}:{chr(65 + i)}" if duplicated else n, n) for i, n in enumerate(names)]


def check_kernelspecs(names: list[str]) -> None:
    """Fail before launching anything, naming what is installed instead."""
    installed = KernelSpecManager().find_kernel_specs()
    missing = [n for n in names if n not in installed]
    if missing:
        raise SystemExit(
            f"no kernelspec {', '.join(missing)} for {sys.executable}; "
            f"installed: {', '.join(sorted(installed)) or 'none'}"
        )


def version_of(dist: str) -> str | None:
    """Installed version; for trio-kernel also the package's __version__ if importable."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
    if dist != "trio-kernel":
        return None
    try:
        module = importlib.import_module("kernel")
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def machine() -> dict[str, Any]:
    """Collect what the numbers depend on: CPUs, Python, library versions."""
    versions = {dist: version_of(dist) for dist in DISTRIBUTIONS}
    return {
        "cpus": cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libzmq": zmq.zmq_version(),
        "versions": versions,
    }


def cpu_count() -> int:
    """CPUs this process may use (affinity), which is what client and kernel share."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def print_header(info: dict[str, Any], plan: Plan) -> None:
    """Machine and versions first, so a pasted table carries its context."""
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in info["versions"].items())
    print(f"machine: {info['cpus']} CPUs, Python {info['python']}, {info['platform']}")
    print(f"packages: {versions}, libzmq {info['libzmq']}")
    print(f"plan: {'quick' if plan == QUICK else 'full'} {asdict(plan)}", flush=True)


def describe(slot: Slot) -> dict[str, Any]:
    """Who actually answered, from the kernel_info_reply of its first long-lived process."""
    info = slot.kernel.info if slot.kernel else {}
    language = info.get("language_info", {})
    return {
        "label": slot.label,
        "kernelspec": slot.name,
        "implementation": info.get("implementation"),
        "implementation_version": info.get("implementation_version"),
        "protocol_version": info.get("protocol_version"),
        "language": f"{language.get('name', '?')} {language.get('version', '')}".strip(),
    }


class KernelUnavailable(Exception):
    """A long-lived kernel could not be (re)started: the run cannot go on."""


def open_kernel(slot: Slot, log: IO[bytes]) -> None:
    """Start the slot's long-lived kernel and wait until its iopub is live."""
    kernel = Kernel(slot.name, log)
    slot.kernel = kernel
    try:
        kernel.start(timeout=60)
        kernel.warm_up(timeout=30)
    except (TimeoutError, RuntimeError) as exc:
        raise KernelUnavailable(f"{slot.label}: {exc}") from exc


def replace_kernel(slot: Slot, log: IO[bytes]) -> None:
    """Kill a kernel left busy or broken so the next scenario starts clean."""
    if slot.kernel is not None:
        slot.kernel.close(now=True)
    open_kernel(slot, log)


def run_startup(slots: list[Slot], plan: Plan, log: IO[bytes]) -> list[ScenarioResult]:
    """Fresh kernels in alternation: startup times and RSS come from the same launches."""
    times = {s.label: KernelResult() for s in slots}
    first_cell = {s.label: KernelResult() for s in slots}
    rss = {s.label: KernelResult() for s in slots}
    for _ in range(plan.startups):
        for slot in slots:
            try:
                seconds, to_cell, mib = startup(slot.name, log)
            except (TimeoutError, RuntimeError) as exc:
                times[slot.label].add(Outcome(failures=[str(exc)]))
                first_cell[slot.label].add(Outcome(failures=["no kernel"]))
                rss[slot.label].add(Outcome(failures=["no kernel"]))
                continue
            times[slot.label].add(Outcome([seconds]))
            first_cell[slot.label].add(Outcome([to_cell]))
            rss[slot.label].add(Outcome([mib]))
    return [
        ScenarioResult("startup", "startup to kernel_info", "s", times, Target(ratio_max=0.7, anchor="python3")),
        ScenarioResult("first_cell", "startup to first execute_reply", "s", first_cell,
                       Target(ratio_max=1.2, anchor="xpython")),
        ScenarioResult("rss", "RSS after first cell", "MiB", rss, Target(ratio_max=1.0, anchor="xpython")),
    ]


def run_round(scenario: Scenario, slot: Slot, log: IO[bytes]) -> Outcome:
    """One round on one kernel; a timeout or crash is a failure, not the end of the run."""
    assert slot.kernel is not None
    slot.kernel.tracks.clear()
    try:
        outcome = scenario.run(slot.kernel)
    except TimeoutError as exc:
        outcome = Outcome(failures=[str(exc)], restart=True)
    except (zmq.ZMQError, RuntimeError, ValueError, KeyError) as exc:
        outcome = Outcome(failures=[f"{type(exc).__name__}: {exc}"], restart=True)
    if outcome.restart:
        replace_kernel(slot, log)
    return outcome


def run_scenario(scenario: Scenario, slots: list[Slot], log: IO[bytes]) -> ScenarioResult:
    """Alternate kernels each round; failed rounds count but do not stop the others.

    A kernel whose round timed out (and so was replaced) sits out the scenario's later
    rounds: an anchor that never finishes a 200k-line flood would otherwise spend minutes
    per round proving it again.
    """
    results = {s.label: KernelResult() for s in slots}
    gave_up: set[str] = set()
    for _ in range(scenario.rounds):
        for slot in slots:
            if slot.label in gave_up:
                continue
            outcome = run_round(scenario, slot, log)
            results[slot.label].add(outcome)
            if outcome.restart:
                gave_up.add(slot.label)
    return ScenarioResult(
        scenario.key,
        scenario.title,
        scenario.unit,
        results,
        scenario.target,
        scenario.p99,
    )


def progress(text: str) -> None:
    """On stderr, so stdout stays a clean header plus table."""
    print(f"  {text}", file=sys.stderr, flush=True)


def run(slots: list[Slot], plan: Plan, log: IO[bytes], rows: list[ScenarioResult]) -> None:
    """All scenarios in order, appending to rows as they finish so Ctrl-C keeps them."""
    progress("startup and RSS")
    rows += run_startup(slots, plan, log)
    for slot in slots:
        open_kernel(slot, log)
    for scenario in all_scenarios(plan):
        progress(scenario.title)
        rows.append(run_scenario(scenario, slots, log))


@contextmanager
def kernels_reaped(slots: list[Slot]) -> Iterator[None]:
    """Shut down every long-lived kernel; a second Ctrl-C cannot orphan one."""
    try:
        yield
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for slot in slots:
                if slot.kernel is not None:
                    slot.kernel.close()
        finally:
            signal.signal(signal.SIGINT, previous)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Indented, so two result files diff line by line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def print_results(slots: list[Slot], rows: list[ScenarioResult]) -> None:
    """Who answered (from kernel_info), then the table."""
    for k in map(describe, slots):
        if k["implementation"] is None:
            print(f"{k['label']}: no kernel_info (never started)")
            continue
        print(
            f"{k['label']}: {k['implementation']} {k['implementation_version']}, "
            f"protocol {k['protocol_version']}, {k['language']}"
        )
    if rows:
        print(render_table(rows, [s.label for s in slots]))


def build_report(
    args: argparse.Namespace,
    info: dict[str, Any],
    slots: list[Slot],
    rows: list[ScenarioResult],
    started: float,
    complete: bool,
) -> dict[str, Any]:
    """The JSON document; "ok" is false if any kernel failed any scenario."""
    return {
        "complete": complete,
        "ok": complete and all(r.to_json()["ok"] for r in rows),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "plan": asdict(QUICK if args.quick else FULL),
        "machine": info,
        "kernels": [describe(s) for s in slots],
        "scenarios": {r.key: r.to_json() for r in rows},
    }


def main(argv: list[str] | None = None) -> int:
    """Run, then print and save whatever finished, even after Ctrl-C or an error."""
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    slots = make_slots(args.kernels)
    info = machine()
    print_header(info, plan)
    rows: list[ScenarioResult] = []
    started = time.time()
    complete, status = False, 0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.json.with_suffix(".kernels.log")
    try:
        with log_path.open("wb") as log, kernels_reaped(slots):
            run(slots, plan, log, rows)
            complete = True
    except KeyboardInterrupt:
        print("interrupted: kernels shut down, partial results follow", file=sys.stderr)
        status = 130
    except KernelUnavailable as exc:
        print(f"stopped: cannot start {exc}", file=sys.stderr)
        status = 1
    finally:
        print_results(slots, rows)
        report = build_report(args, info, slots, rows, started, complete)
        write_json(args.json, report)
        print(f"wrote {args.json} in {report['seconds']} s (kernel output: {log_path})")
    return status


if __name__ == "__main__":
    sys.exit(main())
