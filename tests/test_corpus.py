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


ROOTS = {entry["package"]: CACHE / f"{entry['package']}-{entry['version']}" for entry in MANIFEST["sdists"]}
ROOTS["papermill"] = Path(papermill.__file__).parent
NB, PM = "tests/files/", "tests/notebooks/"
NOT_RUN = {
    ("nbclient", NB + "Autokill.ipynb"): "kills its own kernel process (nbclient tests DeadKernelError)",
    ("nbclient", NB + "Parallel Execute A.ipynb"): "needs its partner notebook running at the same time",
    ("nbclient", NB + "Parallel Execute B.ipynb"): "needs its partner notebook running at the same time",
    ("nbclient", NB + "Sleep1s.ipynb"): "prints wall-clock timestamps",
    ("papermill", PM + "binder.ipynb"): "runs papermill on paths of papermill's source tree",
    ("papermill", PM + "blank-vscode.ipynb"): "one empty cell",
    ("papermill", PM + "keyboard_interrupt.ipynb"): "sleeps 60 s waiting for a KeyboardInterrupt",
    ("papermill", PM + "notimplemented_translator.ipynb"): "an R notebook",
    ("papermill", PM + "read_check.ipynb"): "needs papermill's test working directory",
    ("papermill", PM + "result_no_exec.ipynb"): "no code to run",
    ("papermill", PM + "nb_version_4.4.ipynb"): "the same cells as no_parameters.ipynb",
    ("papermill", PM + "sysexit0.ipynb"): "the same cells as sysexit.ipynb",
    ("papermill", PM + "test_autosave.ipynb"): "2.5 s of sleep(0.1) and print",
    # Cells other notebooks here already run (kept out to hold the corpus near a minute):
    ("nbclient", NB + "UnicodePy3.ipynb"): "the same cell as Unicode.ipynb",
    ("nbclient", NB + "HelloWorld.ipynb"): "one print, as in Unicode.ipynb",
    ("papermill", PM + "broken1.ipynb"): "the cells of broken.ipynb",
    ("papermill", PM + "sysexit1.ipynb"): "the cells of sysexit.ipynb with sys.exit(1)",
    ("papermill", PM + "no_parameters.ipynb"): "the cells of simple_execute.ipynb",
    ("papermill", PM + "test_notebooknode_io.ipynb"): "one print, as in Unicode.ipynb",
    ("papermill", PM + "report_mode_test.ipynb"): "assignments and a print, as in Factorials.ipynb",
}
"""Notebooks of whole directories that are not run, and why (sdists with a ``run`` list in
the manifest name their notebooks instead)."""
KNOWN_DIFFERENCES: dict[tuple[str, str, int], str] = {
    ("nbclient", NB + "Check History in Memory.ipynb", 1):
        "nbclient passes --HistoryManager.hist_file=:memory: only to kernels named python*",
    ("nbclient", NB + "Disable Stdin.ipynb", 0):
        "StdinNotImplementedError's message names the cause (allow_stdin=False)",
    ("papermill", PM + "line_magic_error.ipynb", 0):
        "a magic's UsageError is an error output (ipykernel: stderr text), so nbclient reports it",
    ("nbval", "tests/test_coalesce.ipynb", 3):
        "stderr, stdout, stderr prints come out in that order (ipykernel: stdout first, both stderr lines after)",
}
RANDOM_OUTPUT = {
    ("nbconvert", NB + "notebook2.ipynb", 13): "a histogram of np.random data",
    ("nbval", "tests/exceptions.ipynb", 2): "prints time.time()",
}
"""Cells whose output differs from run to run: only reply status and output types compared."""
EXTRA = {("nbclient", NB + "Interrupt.ipynb"): {"timeout": 2, "interrupt_on_timeout": True}}


def _corpus() -> list[tuple[str, str]]:
    """(package, notebook path under the package's root) of every notebook to run."""
    found = []
    for entry in MANIFEST["sdists"]:
        root = ROOTS[entry["package"]]
        paths = entry.get("run") or [str(p.relative_to(root)) for d in entry["directories"]
                                     for p in sorted((root / d).glob("*.ipynb"))]
        found += [(entry["package"], path) for path in paths]
    for entry in MANIFEST["installed"]:
        root = ROOTS[entry["package"]]
        found += [(entry["package"], str(p.relative_to(root)))
                  for p in sorted((root / entry["directory"]).glob("*.ipynb"))]
    return [item for item in found if item not in NOT_RUN]


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


def _shape(view: dict[str, Any]) -> dict[str, Any]:
    """Status and the kinds of outputs, without their content."""
    return {"status": view["status"],
            "outputs": [(o["output_type"], o.get("name"), sorted(o.get("data", {}))) for o in view["outputs"]]}


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
    path = ROOTS[package] / name
    extra = EXTRA.get((package, name), {})

    async def both() -> list[tuple[Any, list[str]]]:
        return list(await asyncio.gather(_execute(path, "trio", extra), _execute(path, "python3", extra)))

    (trio_nb, trio_status), (ipy_nb, ipy_status) = asyncio.run(both())
    differing = []
    for index, (ours, theirs) in enumerate(zip(trio_nb.cells, ipy_nb.cells, strict=True)):
        if ours.cell_type != "code":
            continue
        ours_seen, theirs_seen = _cell_view(ours, trio_status[index]), _cell_view(theirs, ipy_status[index])
        if (package, name, index) in RANDOM_OUTPUT:
            ours_seen, theirs_seen = _shape(ours_seen), _shape(theirs_seen)
        same = ours_seen == theirs_seen
        if (package, name, index) in KNOWN_DIFFERENCES:
            assert not same, f"cell {index} now matches ipykernel: remove it from KNOWN_DIFFERENCES"
        elif not same:
            differing.append((index, ours_seen, theirs_seen))
    assert not differing, differing
    assert _widgets(trio_nb) == _widgets(ipy_nb)


def test_corpus_is_present() -> None:
    """``make setup`` fetched the corpus; the test above would otherwise run on nothing."""
    assert len(_corpus()) >= 35, f"corpus missing? run `make setup` (found {_corpus()})"
    assert all((ROOTS[package] / name).is_file() for package, name in _corpus())
