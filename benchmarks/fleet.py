"""A notebook fleet: the CI user at scale.

Executes N small notebooks with nbclient, C at a time, once per kernel (default 200 and 8,
``trio`` then ``python3``), and reports notebooks per second, failures, and what the run
left behind: kernel processes still alive, connection files in the runtime dir, entries in
the temp dir, and "database is locked" (or any traceback) in the kernels' stderr.

Each kernel's run gets fresh ``JUPYTER_RUNTIME_DIR``, ``TMPDIR`` and ``IPYTHONDIR``
directories, so leftovers are counted exactly and the kernels of one run share exactly
what a real fleet shares: one IPython profile (its history database) and one runtime dir.
Every notebook prints its own number and checks its own result, so output that reached the
wrong notebook, or a kernel that answered for another, counts as a failure.

    .venv/bin/python benchmarks/fleet.py [--count 200] [--concurrency 8] [--kernels trio,python3]

The machine this runs on is shared and noisy: compare kernels by the ratio within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

RESULTS = Path(__file__).parent / "results"
CODE_CELLS = 4
"""Code cells per notebook (each one history entry)."""


def make_notebook(n: int) -> nbformat.NotebookNode:
    """Notebook ``n``: imports, a computation, printed and displayed output, a result."""
    return new_notebook(cells=[
        new_markdown_cell(f"# Notebook {n}"),
        new_code_cell("import math\nfrom IPython.display import HTML, display"),
        new_code_cell(f"n = {n}\ntotal = sum(math.sqrt(i) for i in range(1000 + n))\n"
                      "print(f'notebook {n}: {total:.3f}')"),
        new_code_cell("display(HTML(f'<b>{n}</b>'))"),
        new_code_cell(f"assert n == {n}\nn * 2"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def check_outputs(nb: nbformat.NotebookNode, n: int) -> str | None:
    """Why notebook ``n``'s outputs are wrong, or ``None`` when they are its own."""
    printed = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.output_type == "stream")
    if not printed.startswith(f"notebook {n}: "):
        return f"printed {printed!r}"
    html = [o.data.get("text/html") for o in nb.cells[3].outputs if o.output_type == "display_data"]
    if html != [f"<b>{n}</b>"]:
        return f"displayed {html!r}"
    result = [o.data.get("text/plain") for o in nb.cells[4].outputs if o.output_type == "execute_result"]
    if result != [str(n * 2)]:
        return f"result {result!r}"
    return None


async def run_fleet(kernel: str, count: int, concurrency: int, stderr_path: Path) -> dict[str, Any]:
    """Execute ``count`` notebooks on ``kernel``, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    with stderr_path.open("ab") as stderr:
        async def one(n: int) -> None:
            async with gate:
                nb = make_notebook(n)
                client = NotebookClient(nb, kernel_name=kernel, timeout=120, startup_timeout=120)
                try:
                    await client.async_execute(stderr=stderr)
                except Exception as exc:  # a failed notebook is a result, not a crash
                    failures.append(f"{n}: {type(exc).__name__}: {str(exc).strip()[:200]}")
                    return
                wrong = check_outputs(nb, n)
                if wrong:
                    failures.append(f"{n}: {wrong}")

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for n in range(count):
                group.create_task(one(n))
        elapsed = time.perf_counter() - started
    return {"kernel": kernel, "count": count, "concurrency": concurrency, "seconds": elapsed,
            "notebooks_per_second": count / elapsed, "failures": failures}


def leftovers(runtime_dir: Path, tmp_dir: Path, stderr_path: Path, before: set[int],
              history_db: Path) -> dict[str, Any]:
    """What a finished run left: processes, connection files, temp entries, kernel errors,
    and how many sessions and cells reached the shared history database (``None`` when the
    kernels kept history in memory, as nbclient asks ipykernel to)."""
    text = stderr_path.read_text(errors="replace")
    return {
        "history": _history_counts(history_db),
        "processes": sorted(_children() - before),
        "connection_files": sorted(p.name for p in runtime_dir.glob("*.json")),
        "temp_entries": sorted(p.name for p in tmp_dir.iterdir()),
        "database_locked": text.count("database is locked"),
        "tracebacks": text.count("Traceback"),
    }


def _history_counts(db: Path) -> dict[str, int] | None:
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        cells = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    return {"sessions": sessions, "cells": cells}


def _children() -> set[int]:
    """Living (non-zombie) processes whose parent is this one."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kernels", default="trio,python3")
    parser.add_argument("--json", type=Path, default=RESULTS / "fleet.json")
    args = parser.parse_args(argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-") as scratch:
        for kernel in args.kernels.split(","):
            base = Path(scratch) / kernel
            runtime_dir, tmp_dir, ipython_dir = base / "runtime", base / "tmp", base / "ipython"
            for d in (runtime_dir, tmp_dir, ipython_dir):
                d.mkdir(parents=True)
            # Inherited by every kernel this run starts (jupyter_client copies os.environ).
            os.environ.update(JUPYTER_RUNTIME_DIR=str(runtime_dir), TMPDIR=str(tmp_dir),
                              IPYTHONDIR=str(ipython_dir))
            tempfile.tempdir = None  # this process too (nbclient's own temp files)
            stderr_path = base / "kernels.log"
            before = _children()
            print(f"{kernel}: {args.count} notebooks, {args.concurrency} at a time...", file=sys.stderr)
            row = asyncio.run(run_fleet(kernel, args.count, args.concurrency, stderr_path))
            row["left"] = leftovers(runtime_dir, tmp_dir, stderr_path, before,
                                    ipython_dir / "profile_default" / "history.sqlite")
            rows.append(row)
    _print_table(rows)
    args.json.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                     "python": platform.python_version(), "runs": rows}, indent=2))
    bad = any(r["failures"] or _history_lost(r) or any(
        r["left"][k] for k in ("processes", "connection_files", "temp_entries", "database_locked")) for r in rows)
    return 1 if bad else 0


def _history_lost(row: dict[str, Any]) -> bool:
    """Sessions or cells missing from the shared history database."""
    history = row["left"]["history"]
    return history is not None and (history["sessions"], history["cells"]) != (row["count"], CODE_CELLS * row["count"])


def _print_table(rows: list[dict[str, Any]]) -> None:
    first = rows[0]["notebooks_per_second"]
    print("| kernel | notebooks | at a time | seconds | notebooks/s | vs first | failures | "
          "processes left | connection files left | temp entries left | 'database is locked' | tracebacks | "
          "history sessions / cells |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        left = r["left"]
        print(f"| {r['kernel']} | {r['count']} | {r['concurrency']} | {r['seconds']:.1f} | "
              f"{r['notebooks_per_second']:.2f} | {r['notebooks_per_second'] / first:.2f} | {len(r['failures'])} | "
              f"{len(left['processes'])} | {len(left['connection_files'])} | {len(left['temp_entries'])} | "
              f"{left['database_locked']} | {left['tracebacks']} | {_history_cell(left['history'])} |")
    for r in rows:
        for failure in r["failures"][:10]:
            print(f"  {r['kernel']} failure {failure}", file=sys.stderr)
        for key in ("processes", "connection_files", "temp_entries"):
            if r["left"][key]:
                print(f"  {r['kernel']} left {key}: {r['left'][key][:10]}", file=sys.stderr)


def _history_cell(history: dict[str, int] | None) -> str:
    return "in memory" if history is None else f"{history['sessions']} / {history['cells']}"


if __name__ == "__main__":
    sys.exit(main())
