"""Results: samples per kernel, their summary, the console table and the JSON form.

Pure data and formatting, no kernels, so it can be read (and changed) without
running anything.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from _scenarios import Outcome, Target

RED, GREEN, RESET = "\033[31m", "\033[32m", "\033[0m"


def paint(text: str, colour: str) -> str:
    """ANSI colour unless NO_COLOR is set; failures must stand out in a long log."""
    return text if os.environ.get("NO_COLOR") else f"{colour}{text}{RESET}"


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile: an observed value, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class KernelResult:
    """Everything one kernel produced in one scenario, across rounds."""

    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0

    def add(self, outcome: Outcome) -> None:
        self.rounds += 1
        self.values.extend(outcome.values)
        self.failures.extend(outcome.failures)
        if outcome.notes:
            self.notes.append(outcome.notes)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def to_json(self, with_p99: bool) -> dict[str, Any]:
        return {
            "ok": not self.failures,
            "median": self.median,
            "p99": p99(self.values) if with_p99 and self.values else None,
            "values": self.values,
            "rounds": self.rounds,
            "failures": self.failures,
            "notes": self.notes,
        }


@dataclass
class ScenarioResult:
    """One table row: a result per kernel label, in the order given on the command line."""

    key: str
    title: str
    unit: str
    kernels: dict[str, KernelResult]
    target: Target | None = None
    with_p99: bool = False

    def ratio_to(self, label: str) -> float | None:
        """The first kernel's median over ``label``'s; None unless both ran cleanly."""
        first = next(iter(self.kernels.values()))
        other = self.kernels.get(label)
        if other is None or first.failures or other.failures or first.median is None or not other.median:
            return None
        return first.median / other.median

    @property
    def anchor(self) -> str | None:
        """The label the target's ratio is taken against: its named anchor if present,
        else the second kernel."""
        labels = list(self.kernels)
        if self.target is not None and self.target.anchor in labels[1:]:
            return self.target.anchor
        return labels[1] if len(labels) > 1 else None

    @property
    def ratio(self) -> float | None:
        """The first kernel's median over the anchor's."""
        return self.ratio_to(self.anchor) if self.anchor else None

    @property
    def target_met(self) -> bool | None:
        if self.target is None:
            return None
        first = next(iter(self.kernels.values()))
        if first.failures:
            return False
        return self.target.met(self.ratio, first.values)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "ratios_of_first": {label: self.ratio_to(label) for label in list(self.kernels)[1:]},
            "anchor": self.anchor,
            "ratio_first_over_anchor": self.ratio,
            "target": self.target.text() if self.target else None,
            "target_met": self.target_met,
            "ok": all(not r.failures for r in self.kernels.values()),
            "kernels": {label: r.to_json(self.with_p99) for label, r in self.kernels.items()},
        }


def fmt(value: float | None, unit: str) -> str:
    """Enough digits to compare two kernels, no more."""
    if value is None:
        return "-"
    if unit == "req/s":
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:.1f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:.3f}"


def failure_summary(result: KernelResult) -> str:
    """'2/3 no reply in 10 s': each distinct failure once, with how many rounds had it."""
    counts = Counter(result.failures)
    if result.rounds <= 1:
        return "; ".join(counts)
    return "; ".join(f"{n}/{result.rounds} {text}" for text, n in counts.items())


def _median_cell(result: KernelResult, unit: str) -> str:
    if not result.failures:
        return fmt(result.median, unit)
    summary = failure_summary(result)
    if result.median is None:
        return paint(summary, RED)
    return paint(f"{fmt(result.median, unit)} ({summary})", RED)


def _ratio_cell(row: ScenarioResult, label: str) -> str:
    """The ratio to ``label``, coloured by the target when ``label`` is its anchor."""
    ratio = row.ratio_to(label)
    if ratio is None:
        return "-"
    text = f"{ratio:.2f}x"
    met = row.target_met if label == row.anchor and row.target and row.target.first_max is None \
        and row.target.median_max is None else None
    return text if met is None else paint(text, GREEN if met else RED)


def _target_cell(row: ScenarioResult) -> str:
    """The target; absolute targets are coloured here, ratio targets in their column."""
    if row.target is None:
        return ""
    text = row.target.text()
    if row.target.first_max is None and row.target.median_max is None:
        return text
    met = row.target_met
    return text if met is None else paint(text, GREEN if met else RED)


def table_rows(rows: list[ScenarioResult], labels: list[str]) -> list[list[str]]:
    """Header plus one line per scenario; p99 only where it is a latency distribution."""
    header = ["scenario"]
    for label in labels:
        header += [f"{label} median", "p99"]
    header += [f"{labels[0]}/{other}" for other in labels[1:]] + ["target"]
    lines = [header]
    for row in rows:
        line = [f"{row.title} ({row.unit})"]
        for label in labels:
            result = row.kernels[label]
            spread = p99(result.values) if row.with_p99 and result.values else None
            line += [
                _median_cell(result, row.unit),
                fmt(spread, row.unit) if row.with_p99 else "",
            ]
        line += [_ratio_cell(row, other) for other in labels[1:]] + [_target_cell(row)]
        lines.append(line)
    return lines


def _visible_len(text: str) -> int:
    for code in (RED, GREEN, RESET):
        text = text.replace(code, "")
    return len(text)


def render_table(rows: list[ScenarioResult], labels: list[str]) -> str:
    """Left-aligned scenario names, right-aligned numbers, widths from the content."""
    lines = table_rows(rows, labels)
    widths = [max(_visible_len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [line[0] + " " * (widths[0] - _visible_len(line[0]))]
        cells += [" " * (w - _visible_len(c)) + c for c, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells))
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)
