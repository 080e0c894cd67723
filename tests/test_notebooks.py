"""Notebooks run headless: nbclient and papermill against the ``trio`` kernelspec.

Every notebook in ``examples/`` is executed (those that ask for ``input()`` without a CI
guard are skipped: nbclient does not allow stdin) and checked: no error output except in
cells tagged ``raises-exception``, which must have one. Our own notebooks are checked for
their specific outputs too. Each run starts a kernel process and nbclient shuts it down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

from tests.harness import KERNEL_NAME

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
CELL_TIMEOUT = 60
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python 3 (trio)", "language": "python"}


@pytest.fixture(autouse=True)
def _ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels started here inherit CI=1: example cells that would ask for input don't."""
    monkeypatch.setenv("CI", "1")


def needs_stdin(nb: nbformat.NotebookNode) -> bool:
    """A code cell calls input()/getpass() and does not guard it with the CI variable."""
    return any(
        cell.cell_type == "code" and re.search(r"\b(input|getpass)\(", cell.source) and "CI" not in cell.source
        for cell in nb.cells
    )


def execute(nb: nbformat.NotebookNode, **kwargs: Any) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(EXAMPLES)}}, **kwargs)
    return client.execute()


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def errors(cell: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]


def text(cell: nbformat.NotebookNode) -> str:
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == "stdout")


def mime_outputs(cell: nbformat.NotebookNode, mime: str) -> list[Any]:
    return [o["data"][mime] for o in cell.outputs
            if o["output_type"] in ("display_data", "execute_result") and mime in o.get("data", {})]


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_example_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"widgets_and_plots.ipynb", "params.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_example_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    if needs_stdin(nb):
        pytest.skip(f"{path.name} asks for input(), which nbclient cannot answer")
    nb = execute(nb)
    for cell in code_cells(nb):
        assert cell.execution_count is not None, cell.source
        if "raises-exception" in tags(cell):
            assert errors(cell), f"expected an error from: {cell.source}"
        else:
            assert not errors(cell), (cell.source, errors(cell))
    check = SPECIFIC_CHECKS.get(path.stem)
    if check is not None:
        check(nb)


def _check_widgets_and_plots(nb: nbformat.NotebookNode) -> None:
    cells = code_cells(nb)
    views = [v for c in cells for v in mime_outputs(c, "application/vnd.jupyter.widget-view+json")]
    assert len(views) == 2 and all(v["model_id"] for v in views)
    assert text(cells[1]) == "7 [7]\n"
    pngs = [p for c in cells for p in mime_outputs(c, "image/png")]
    assert len(pngs) == 2  # one from a queued cell, one from a # task cell
    assert "hello CI\n" in [text(c) for c in cells]
    # The widget state is saved for the notebook's viewers.
    assert nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def _check_params(nb: nbformat.NotebookNode) -> None:
    cells = code_cells(nb)
    assert text(cells[1]) == "".join(f"hello world #{i}\n" for i in range(3))


def _check_trio_native(nb: nbformat.NotebookNode) -> None:
    cells = code_cells(nb)
    assert text(cells[3]) == "['HELLO', 'FROM ASYNCIO']\n"  # asyncio client, trio server
    final = text(cells[4]).splitlines()
    assert final[1].split()[1:3] == ["ticker", "In[1]"] and final[1].endswith("done")
    assert final[2].endswith("running")  # the server outlived its cell
    assert "2 shout server" in text(cells[5])


SPECIFIC_CHECKS = {"widgets_and_plots": _check_widgets_and_plots, "params": _check_params,
                   "trio_native": _check_trio_native}


def test_papermill_injects_parameters(tmp_path: Path) -> None:
    out = tmp_path / "params-out.ipynb"
    nb = papermill.execute_notebook(
        str(EXAMPLES / "params.ipynb"), str(out),
        parameters={"name": "papermill", "count": 2},
        kernel_name=KERNEL_NAME, cwd=str(EXAMPLES), progress_bar=False, execution_timeout=CELL_TIMEOUT,
    )
    cells = code_cells(nb)
    injected = [c for c in cells if "injected-parameters" in tags(c)]
    assert len(injected) == 1
    assert cells.index(injected[0]) == 1  # right after the "parameters" cell
    assert text(cells[2]) == "hello papermill #0\nhello papermill #1\n"
    (summary,) = mime_outputs(cells[3], "text/plain")
    assert summary == "{'name': 'papermill', 'count': 2}"
    assert out.exists()
    assert nbformat.read(out, as_version=4).metadata["papermill"]["parameters"] == {"name": "papermill", "count": 2}


def test_failing_cell_raises_cell_execution_error() -> None:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_code_cell("def check(x):\n    raise ValueError(f'bad value {x}')"),
        new_code_cell("check(42)"),
        new_code_cell("print('never runs')"),
    ])
    with pytest.raises(CellExecutionError) as caught:
        execute(nb)
    exc = caught.value
    assert exc.ename == "ValueError"
    assert exc.evalue == "bad value 42"
    assert "ValueError" in str(exc) and "bad value 42" in str(exc)
    assert "check(42)" in str(exc)  # our traceback text, with the failing line
    (error,) = errors(nb.cells[1])
    assert error["ename"] == "ValueError"
    assert nb.cells[2].execution_count is None


def test_raises_exception_tag_lets_the_run_continue() -> None:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        new_code_cell("print('after the error')"),
    ])
    nb = execute(nb)
    (error,) = errors(nb.cells[0])
    assert error["ename"] == "ZeroDivisionError"
    assert text(nb.cells[1]) == "after the error\n"
