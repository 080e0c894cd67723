"""What a kernel has loaded once a notebook's first cell has run: nothing that cell did not
need (the property behind "RSS after the first cell", see benchmarks/README.md)."""

from __future__ import annotations

import ast

from tests.harness import Frontend, stdout_of

NOT_AT_FIRST_CELL = (
    "sqlite3",                    # history database: opened on first use (_shell/history.py)
    "kernel._debugger.debugger",  # built on the first debug_request (_debugger/lazy.py)
    "kernel._debugger.client",
    "debugpy",                    # imported on the debugger's initialize
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
