"""History is stored in sqlite and survives a kernel restart; --no-history keeps it in memory."""

from __future__ import annotations

import contextlib
import datetime
import os
import sqlite3
import uuid
from pathlib import Path

from tests.harness import Frontend, running_kernel, stdout_of


def _search(frontend: Frontend, pattern: str) -> list[list]:
    msg_id = frontend.send_shell("history_request", {"hist_access_type": "search", "pattern": pattern,
                                                     "raw": True, "output": False, "unique": False})
    reply = frontend.shell_reply(msg_id)
    assert reply["content"]["status"] == "ok"
    return reply["content"]["history"]


def test_history_survives_a_restart(fresh_kernel: Frontend) -> None:
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    fresh_kernel.execute(f"{marker} = 1")
    assert [entry[2] for entry in _search(fresh_kernel, f"{marker}*")] == [f"{marker} = 1"]
    fresh_kernel.km.restart_kernel(now=False)
    fresh_kernel.kc.wait_for_ready(timeout=20)
    entries = _search(fresh_kernel, f"{marker}*")
    assert [entry[2] for entry in entries] == [f"{marker} = 1"]
    tail = fresh_kernel.shell_reply(fresh_kernel.send_shell(
        "history_request", {"hist_access_type": "tail", "n": 5, "raw": True, "output": False}))
    assert tail["content"]["status"] == "ok"


def test_no_history_keeps_nothing_on_disk() -> None:
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    with running_kernel(env_extra={"TRIO_KERNEL_NO_HISTORY": "1"}) as first:
        first.execute(f"{marker} = 1")
        assert _search(first, f"{marker}*")
    with running_kernel() as second:
        assert _search(second, f"{marker}*") == []


def test_stored_tracebacks_are_bounded(kernel: Frontend) -> None:
    from kernel._shell.execution import KEPT_TRACEBACKS

    for _ in range(3):
        kernel.execute("1/0")
    _, outputs = kernel.execute(
        "hm = get_ipython().history_manager\n"
        f"hm.exceptions.update({{-i: {{}} for i in range(1, {KEPT_TRACEBACKS} + 10)}})\n"
        "print(len(hm.exceptions))")
    reply, _ = kernel.execute("1/0")
    assert reply["content"]["status"] == "error"
    # The oldest entries (the made-up negative counts) went; the four real failures stayed.
    _, outputs = kernel.execute("print(len(hm.exceptions), sum(k > 0 for k in hm.exceptions))")
    assert "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream") == (
        f"{KEPT_TRACEBACKS} 4\n")


def test_the_database_opens_on_first_use(fresh_kernel: Frontend) -> None:
    """A fresh kernel has not touched sqlite; reading the session number (what every query
    does) opens the database, and the inputs run so far are there."""
    _, outputs = fresh_kernel.execute(
        "h = get_ipython().history_manager\nimport sys\nprint(h.opened, 'sqlite3' in sys.modules)")
    assert stdout_of(outputs) == "False False\n"
    _, outputs = fresh_kernel.execute(
        "print(h.session_number > 0, h.opened, h.db.execute("
        "'select count(*) from history where session = ?', (h.session_number,)).fetchone()[0])")
    assert stdout_of(outputs) == "True True 2\n"  # the first cell and this one


def test_the_tenth_cell_opens_the_database(fresh_kernel: Frontend) -> None:
    """Inputs are written in batches of ten: the tenth cell opens the database, writes the
    batch and starts IPython's saving thread, with no request asking for history."""
    seen = []
    for _ in range(10):
        _, outputs = fresh_kernel.execute(
            "import threading\nh = get_ipython().history_manager\n"
            "print(len(h.input_hist_raw) - 1, h.opened,"
            " 'IPythonHistorySavingThread' in [t.name for t in threading.enumerate()])")
        seen.append(stdout_of(outputs).split())
    assert seen == [[str(n), "False", "False"] for n in range(1, 10)] + [["10", "True", "True"]]


def test_a_session_is_recorded_with_its_start_at_shutdown() -> None:
    """A kernel that never needed its database still records its session (start, end, the
    number of cells, the inputs) when it shuts down, and the start is when it started."""
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    with running_kernel() as frontend:
        reply, _ = frontend.execute(f"{marker} = 1")
        assert reply["content"]["status"] == "ok"
        replied_at = datetime.datetime.now()
        _, outputs = frontend.execute("print(get_ipython().history_manager.opened)")
        assert stdout_of(outputs) == "False\n"
    db = Path(os.environ["IPYTHONDIR"]) / "profile_default" / "history.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        start, end, cells = conn.execute(
            "SELECT start, end, num_cmds FROM sessions JOIN history USING (session)"
            " WHERE source_raw = ?", (f"{marker} = 1",)).fetchone()
    assert cells == 2
    assert end is not None
    assert datetime.datetime.fromisoformat(start) < replied_at


def test_history_configured_off_stays_off() -> None:
    """``--HistoryManager.enabled=False`` is IPython's manager (with the write-out that does
    not hold cells up), never opened later."""
    with running_kernel(extra_arguments=["--HistoryManager.enabled=False"]) as frontend:
        frontend.execute("x = 1")
        assert _search(frontend, "x*") == []
        _, outputs = frontend.execute("h = get_ipython().history_manager\nprint(type(h).__name__, h.enabled)")
        assert stdout_of(outputs) == "KernelHistoryManager False\n"


def test_opening_writes_the_cache_out_after_releasing_its_lock() -> None:
    """A writer that holds a lock of its own while it reads ``db`` (as a history manager
    that writes outside IPython's cache lock does) waits for the opening; the opening's own
    write-out must then not hold the opening lock, or the two would wait for each other."""
    import threading

    from kernel._shell.history import DeferredHistory
    from kernel._shell.shell import close_shell, make_shell

    shell = make_shell({}, ":memory:")
    try:
        history = shell.history_manager
        assert isinstance(history, DeferredHistory) and not history.opened
        lock_free_during_writeout: list[bool] = []
        original = history.writeout_cache

        def writeout_cache(conn: object = None) -> None:
            def probe() -> None:  # another thread: is the opening lock free?
                got = history._lock.acquire(timeout=0)
                if got:
                    history._lock.release()
                lock_free_during_writeout.append(got)
            prober = threading.Thread(target=probe)
            prober.start()
            prober.join()
            original(conn)

        history.writeout_cache = writeout_cache  # type: ignore[method-assign]
        assert history.session_number > 0  # opens
        assert lock_free_during_writeout == [True]
    finally:
        close_shell(shell)
