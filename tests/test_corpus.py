"""Real notebooks written by other projects, run with nbclient on ``trio`` and ``python3``
(ipykernel) and compared cell by cell: outputs, reply status and widget (comm) state.

The corpus is named in ``tests/corpus/manifest.json`` (package, version, repository,
tag) and brought in at ``make setup`` by ``tests/corpus/fetch.py`` into
``.venv/corpus/``; papermill's notebooks come from its installed wheel. Nothing of it is
committed. Every difference that remains is listed in ``KNOWN_DIFFERENCES`` (and in
``tests/corpus/DIFFERENCES.md``, with its reason); a listed cell that stops differing
fails the test, so the list stays true. Both kernels run each notebook at the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from nbclient import NotebookClient

from tests import _normalise as norm

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "corpus" / "manifest.json").read_text())
CACHE = HERE.parent / ".venv" / "corpus"
CELL_TIMEOUT = 30


def _directories() -> dict[str, Path]:
    dirs = {}
    for entry in MANIFEST["sdists"]:
        dirs[entry["package"]] = CACHE / f"{entry['package']}-{entry['version']}"
    for entry in MANIFEST["installed"]:
        dirs[entry["package"]] = Path(papermill.__file__).parent / entry["directory"]
    return dirs


DIRS = _directories()
NOT_RUN = {
    ("nbclient", "Autokill.ipynb"): "kills its own kernel process (nbclient tests DeadKernelError)",
    ("nbclient", "Parallel Execute A.ipynb"): "needs its partner notebook running at the same time",
    ("nbclient", "Parallel Execute B.ipynb"): "needs its partner notebook running at the same time",
    ("nbclient", "Sleep1s.ipynb"): "prints wall-clock timestamps",
    ("papermill", "binder.ipynb"): "runs papermill on paths of papermill's source tree",
    ("papermill", "blank-vscode.ipynb"): "one empty cell",
    ("papermill", "keyboard_interrupt.ipynb"): "sleeps 60 s waiting for a KeyboardInterrupt",
    ("papermill", "notimplemented_translator.ipynb"): "an R notebook",
    ("papermill", "read_check.ipynb"): "needs papermill's test working directory",
    ("papermill", "result_no_exec.ipynb"): "no code to run",
    ("papermill", "nb_version_4.4.ipynb"): "the same cells as no_parameters.ipynb",
    ("papermill", "sysexit0.ipynb"): "the same cells as sysexit.ipynb",
    ("papermill", "test_autosave.ipynb"): "2.5 s of sleep(0.1) and print",
}
KNOWN_DIFFERENCES: dict[tuple[str, str, int], str] = {
    ("nbclient", "Check History in Memory.ipynb", 1):
        "nbclient passes --HistoryManager.hist_file=:memory: only to kernels named python*",
    ("nbclient", "Disable Stdin.ipynb", 0):
        "StdinNotImplementedError's message names the cause (allow_stdin=False)",
    ("papermill", "line_magic_error.ipynb", 0):
        "a magic's UsageError is an error output (ipykernel: stderr text), so nbclient reports it",
}
EXTRA = {("nbclient", "Interrupt.ipynb"): {"timeout": 2, "interrupt_on_timeout": True}}


def _corpus() -> list[tuple[str, str]]:
    found = []
    for package, directory in DIRS.items():
        for path in sorted(directory.glob("*.ipynb")):
            if (package, path.name) not in NOT_RUN:
                found.append((package, path.name))
    return found


async def _execute(path: Path, kernel_name: str, extra: dict[str, Any]) -> tuple[Any, list[str]]:
    nb = nbformat.read(path, as_version=4)
    statuses: dict[int, str] = {}

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        statuses[cell_index] = execute_reply["content"]["status"]

    # ipykernel leaves fds alone when it sees PYTEST_CURRENT_TEST; a user's ipykernel does not.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    client = NotebookClient(nb, timeout=extra.get("timeout", CELL_TIMEOUT), kernel_name=kernel_name,
                            allow_errors=True, interrupt_on_timeout=extra.get("interrupt_on_timeout", False),
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=on_cell_executed)
    executed = await client.async_execute(env=env)
    return executed, [statuses.get(i, "not run") for i in range(len(executed.cells))]


def _cell_view(cell: Any, status: str) -> dict[str, Any]:
    outputs = [norm.nb_output(o) for o in cell.get("outputs", [])]
    return {"status": status, "outputs": norm.merge_streams(outputs)}


def _widgets(nb: Any) -> Any:
    """The widget state nbclient recorded from the comm traffic (Output widgets' captured
    outputs included), with model ids replaced."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    models = sorted((norm.comm_data(dict(m["state"])) for m in state.values()), key=json.dumps)
    for model in models:
        if "outputs" in model:
            model["outputs"] = norm.merge_streams([norm.nb_output(o) for o in model["outputs"]])
    return models


@pytest.mark.parametrize(("package", "name"), _corpus())
def test_notebook_matches_ipykernel(package: str, name: str) -> None:
    path = DIRS[package] / name
    extra = EXTRA.get((package, name), {})

    async def both() -> list[tuple[Any, list[str]]]:
        return list(await asyncio.gather(_execute(path, "trio", extra), _execute(path, "python3", extra)))

    (trio_nb, trio_status), (ipy_nb, ipy_status) = asyncio.run(both())
    differing = []
    for index, (ours, theirs) in enumerate(zip(trio_nb.cells, ipy_nb.cells, strict=True)):
        if ours.cell_type != "code":
            continue
        same = _cell_view(ours, trio_status[index]) == _cell_view(theirs, ipy_status[index])
        if (package, name, index) in KNOWN_DIFFERENCES:
            assert not same, f"cell {index} now matches ipykernel: remove it from KNOWN_DIFFERENCES"
        elif not same:
            differing.append((index, _cell_view(ours, trio_status[index]), _cell_view(theirs, ipy_status[index])))
    assert not differing, differing
    assert _widgets(trio_nb) == _widgets(ipy_nb)


def test_corpus_is_present() -> None:
    """``make setup`` fetched the corpus; the test above would otherwise run on nothing."""
    assert len(_corpus()) >= 25, f"corpus missing? run `make setup` (found {_corpus()})"
