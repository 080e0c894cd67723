"""What a kernel has loaded once a notebook's first cell has run: nothing that cell did not
need (the property behind "RSS after the first cell", see benchmarks/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.harness import KERNEL_NAME, Frontend, running_kernel, stdout_of

NOT_AT_FIRST_CELL = (
    "sqlite3",                    # history database: opened on first use (_shell/history.py)
    "kernel._debugger.debugger",  # built on the first debug_request (_debugger/lazy.py)
    "kernel._debugger.client",
    "debugpy",                    # imported on the debugger's initialize
    "IPython.core.completer",     # built on the first completion (_shell/completion.py)
    "jedi", "parso",              # only with IPCompleter.use_jedi
    "asyncio", "trio_asyncio",    # the asyncio bridge starts when a cell uses asyncio
    "IPython.core.debugger", "pdb",
    "pygments.lexers", "pygments.formatters", "stack_data",  # highlighted tracebacks
    "prompt_toolkit", "IPython.terminal",
    "jupyter_client",             # the wire layer signs and frames messages itself
    "tornado", "http", "email", "unittest", "pydoc",
)


def test_first_cell_loads_nothing_it_does_not_need(fresh_kernel: Frontend) -> None:
    # Checked by user expressions of the first cell itself: a cell whose text names asyncio
    # would open the asyncio loop before it runs (``asyncio_bridge``).
    reply, _ = fresh_kernel.execute("pass", user_expressions={
        "loaded": f"[m for m in {list(NOT_AT_FIRST_CELL)!r} if m in __import__('sys').modules]",
        "threads": "[t.name for t in __import__('threading').enumerate()]",
    })
    assert reply["content"]["status"] == "ok"
    results = reply["content"]["user_expressions"]
    loaded = ast.literal_eval(results["loaded"]["data"]["text/plain"])
    threads = ast.literal_eval(results["threads"]["data"]["text/plain"])
    assert loaded == []
    assert "IPythonHistorySavingThread" not in threads  # it starts with the database


def test_the_debugger_still_answers_its_first_request(fresh_kernel: Frontend) -> None:
    reply = fresh_kernel.control("debug_request", {"type": "request", "seq": 1, "command": "debugInfo"})
    assert reply["content"]["success"] is True
    _, outputs = fresh_kernel.execute("import sys; print('kernel._debugger.debugger' in sys.modules)")
    assert stdout_of(outputs) == "True\n"


def test_the_first_completion_builds_the_completer(fresh_kernel: Frontend) -> None:
    fresh_kernel.execute("footprint_marker_value = 1")
    msg_id = fresh_kernel.send_shell("complete_request", {"code": "footprint_marker_v", "cursor_pos": 18})
    reply = fresh_kernel.shell_reply(msg_id)
    assert reply["content"]["matches"] == ["footprint_marker_value"]
    _, outputs = fresh_kernel.execute("import sys; print('IPython.core.completer' in sys.modules)")
    assert stdout_of(outputs) == "True\n"


@pytest.mark.parametrize("kernel_name", [KERNEL_NAME, "python3"])
def test_config_magic_sees_the_completer_before_any_completion(kernel_name: str) -> None:
    """``%config`` lists, reads and sets the completer's options in a kernel that has not
    completed anything yet, as under ipykernel."""
    with running_kernel(kernel_name) as frontend:
        _, outputs = frontend.execute("%config")
        assert "IPCompleter" in stdout_of(outputs).split()
        reply, outputs = frontend.execute(
            "%config IPCompleter.greedy = True\nprint(get_ipython().Completer.greedy)")
        assert reply["content"]["status"] == "ok"
        assert stdout_of(outputs) == "True\n"


def test_ipython_is_imported_after_the_io_loop_can_answer(tmp_path: Path) -> None:
    """The I/O loop answers kernel_info while IPython is imported and the shell is built:
    nothing before ``trio.run`` may import IPython (reading the profile's config files once
    did, ~30 ms before the first kernel_info_reply)."""
    log = tmp_path / "stderr"
    with log.open("w") as stderr, running_kernel(env_extra={"PYTHONPROFILEIMPORTTIME": "1"},
                                                 stderr=stderr) as frontend:
        reply, _ = frontend.execute("pass")
        assert reply["content"]["status"] == "ok"
    # ``-X importtime`` lines: "import time: self | cumulative | <indent>name"; one space of
    # indent marks an import made by running code, not by another module's import.
    names = [line.rsplit("|", 1)[1] for line in log.read_text().splitlines()
             if line.startswith("import time:") and not line.endswith("package")]
    top_level = [name.strip() for name in names if not name.startswith("  ")]
    shell_side = next(i for i, name in enumerate(top_level)
                      if name.startswith(("IPython", "kernel._shell")))
    assert top_level.index("trio") < shell_side


def test_free_heap_pages_are_returned_on_glibc() -> None:
    import platform

    from kernel._app.heap import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
