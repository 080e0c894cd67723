"""Execute a notebook with the ``trio`` kernel through nbclient and print its outputs.

This is ``make run``: the path a CI job or papermill takes, end to end.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render(output: dict) -> str:
    kind = output["output_type"]
    if kind == "stream":
        return output["text"].rstrip("\n")
    if kind == "error":
        return ANSI.sub("", f"{output['ename']}: {output['evalue']}")
    data = output.get("data", {})
    for mime in ("text/markdown", "text/plain"):
        if mime in data:
            text = data[mime]
            return text if mime == "text/plain" else f"[{mime}] {text}"
    return f"[{', '.join(data)}]"


def main(path: str) -> int:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, kernel_name="trio", timeout=60).execute()
    elapsed = time.perf_counter() - start
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        print(f"--- In [{cell.get('execution_count')}] (cell {index}) " + "-" * 30)
        print(cell.source)
        for output in cell.outputs:
            print(f"  => {render(output)}".replace("\n", "\n     "))
    print(f"\nexecuted {Path(path).name} with the trio kernel in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "examples/demo.ipynb"))
