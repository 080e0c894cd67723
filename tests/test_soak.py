"""A 1,000-cell soak in CI (the full 10,000-cell run is ``make soak``).

The soak driver lives in ``benchmarks/soak.py``, which is not a package: it is loaded by
path so that CI and ``make soak`` run the same code.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def _load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trio_kernel_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_soak_1000_cells(record_property: Any) -> None:
    soak = _load_soak()
    report = soak.run_soak(1_000, warmup=100)
    print("\n" + report.summary())
    record_property("soak_cells", report.cells)
    record_property("soak_rss_growth_mb", round(report.rss_growth_mb, 1))
    record_property("soak_threads", f"{report.before.threads}->{report.after.threads}")
    record_property("soak_fds", f"{report.before.fds}->{report.after.fds}")
    assert report.ok, report.summary()


def test_soak_mix_covers_every_kind() -> None:
    """The mix has prints, errors, task and thread cells and interrupts in each mode."""
    soak = _load_soak()
    cells = [soak.cell_for(i) for i in range(1_000)]
    codes = "\n".join(code for code, _ in cells)
    expects = {expect for _, expect in cells}
    assert expects == {"ok", "error", "interrupt"}
    assert "# task" in codes and "# thread" in codes and "print(" in codes
    interrupted = {code for code, expect in cells if expect == "interrupt"}
    assert interrupted == set(soak.INTERRUPTED)
