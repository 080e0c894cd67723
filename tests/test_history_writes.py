"""The history cache is written to sqlite without holding the lock cells store under.

Unit tests on ``KernelHistoryManager`` (no kernel): a writer stuck in sqlite (here: a
connection whose ``executemany`` waits for an event) must not hold up ``store_inputs``,
and a later write-out still writes every entry exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel._shell.history import KernelHistoryManager

TIMEOUT = 10.0


class _StuckConnection:
    """Wraps a real connection; ``executemany`` waits until ``release`` is set."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.entered = threading.Event()
        self.release = threading.Event()

    def executemany(self, statement: str, rows: list[Any]) -> Any:
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        return self.conn.executemany(statement, rows)

    def __enter__(self) -> Any:
        return self.conn.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.conn.__exit__(*exc)


@pytest.fixture
def history(tmp_path: Any) -> Iterator[KernelHistoryManager]:
    shell = InteractiveShell.instance()
    manager = KernelHistoryManager(shell=shell, hist_file=str(tmp_path / "history.sqlite"), db_cache_size=1000)
    try:
        yield manager
    finally:
        if manager.save_thread is not None:
            manager.save_thread.stop()
        manager.db.close()
        InteractiveShell.clear_instance()


def _rows(manager: KernelHistoryManager) -> list[tuple[int, str]]:
    cursor = manager.db.execute("SELECT line, source FROM history WHERE session = ? ORDER BY line",
                                (manager.session_number,))
    return [(line, source) for line, source in cursor]


def test_storing_a_cell_does_not_wait_for_a_write_in_progress(tmp_path: Any,
                                                             history: KernelHistoryManager) -> None:
    history.store_inputs(1, "a = 1")
    stuck = _StuckConnection(sqlite3.connect(str(tmp_path / "history.sqlite"), check_same_thread=False))
    writer = threading.Thread(target=history.writeout_cache, args=(stuck,))
    writer.start()
    try:
        assert stuck.entered.wait(TIMEOUT), "the writer never reached sqlite"
        stored = threading.Event()
        storer = threading.Thread(target=lambda: (history.store_inputs(2, "b = 2"), stored.set()))
        storer.start()
        # The property: the store finishes while the writer is still inside sqlite.
        assert stored.wait(TIMEOUT), "store_inputs waited for the sqlite write"
        assert not stuck.release.is_set()
        storer.join(TIMEOUT)
    finally:
        stuck.release.set()
        writer.join(TIMEOUT)
    history.writeout_cache()
    assert _rows(history) == [(1, "a = 1"), (2, "b = 2")]


def test_every_entry_is_written_once_whoever_writes(history: KernelHistoryManager) -> None:
    writers = []
    for line in range(1, 51):
        history.store_inputs(line, f"x = {line}")
        if line % 7 == 0:
            writers.append(threading.Thread(target=history.writeout_cache))
            writers[-1].start()
    for writer in writers:
        writer.join(TIMEOUT)
        assert not writer.is_alive()
    history.writeout_cache()
    assert _rows(history) == [(line, f"x = {line}") for line in range(1, 51)]
