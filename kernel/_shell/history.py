"""IPython's history manager, with the sqlite write taken out of the cache lock.

IPython appends every cell to an in-memory cache under ``db_input_cache_lock`` and its
saving thread writes the cache to sqlite *holding that lock*, commit and fsync included
(milliseconds). The next cell's ``store_inputs`` then waits for the whole write on the
main thread: with entries written in batches of ten, that was a fifth of a millisecond
of every ``pass`` round trip on average. Here a writer takes the cache under the lock
(a swap) and writes outside it; one writer at a time, so a history request that writes
the cache out first still sees everything stored before it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from IPython.core.history import HistoryManager

if TYPE_CHECKING:
    import sqlite3


class KernelHistoryManager(HistoryManager):
    """``HistoryManager`` whose cache writes never hold the lock cells store under."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._writing = threading.Lock()
        super().__init__(*args, **kwargs)

    def writeout_cache(self, conn: sqlite3.Connection | None = None) -> None:
        """Write the cached entries to the database (any thread; the saving thread's own
        connection, or the shell's)."""
        if not self.enabled:
            return
        with self._writing:
            with self.db_input_cache_lock:
                inputs, self.db_input_cache = self.db_input_cache, []
            with self.db_output_cache_lock:
                outputs, self.db_output_cache = self.db_output_cache, []
            self._write(conn if conn is not None else self.db, inputs, outputs)

    def _write(self, conn: sqlite3.Connection, inputs: list[Any], outputs: list[Any]) -> None:
        """IPython's statements and its answer to a clash: a new session, then one retry."""
        import sqlite3  # loaded already: ``conn`` is one of its connections

        if inputs:
            try:
                self._insert(conn, "INSERT INTO history VALUES (?, ?, ?, ?)", inputs)
            except sqlite3.IntegrityError:
                self.new_session(conn)
                print("ERROR! Session/line number was not unique in database. "
                      f"History logging moved to new session {self.session_number}")
                with contextlib.suppress(sqlite3.IntegrityError):
                    self._insert(conn, "INSERT INTO history VALUES (?, ?, ?, ?)", inputs)
        if outputs:
            try:
                self._insert(conn, "INSERT INTO output_history VALUES (?, ?, ?)", outputs)
            except sqlite3.IntegrityError:
                print("!! Session/line number for output was not unique in database. "
                      "Output will not be stored.")

    def _insert(self, conn: sqlite3.Connection, statement: str, rows: list[Any]) -> None:
        with conn:
            conn.executemany(statement, [(self.session_number, *row) for row in rows])
