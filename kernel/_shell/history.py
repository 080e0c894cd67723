"""IPython's history manager, two changes: the sqlite database is opened on first use, and
its writes never hold the lock each cell stores under.

IPython opens the history database when the shell is built: it imports ``sqlite3`` (the
library and module are about 1.5 MiB of the kernel's memory), creates the tables, inserts
the session's row (a commit, so a disk write) and starts its saving thread. A notebook's
first cells need none of it: inputs are kept in memory (``In``, ``_i``, ``_ih``) and the
kernel writes them in batches of ten anyway (``shell.make_shell``). ``DeferredHistory``
keeps IPython's class and behaviour and only moves that work to the first moment the
database is needed:

- a read of ``db`` or ``session_number`` (what every query of IPython's, ``%history``,
  ``history_request`` and user code go through);
- the input cache reaching ``db_cache_size`` (the tenth cell);
- the end of the session (shutdown, ``%reset``), which writes to ``db``: so every session
  still gets its row.

Opening writes out the inputs cached so far, and records the session's start as the time
the shell was built. What differs from IPython, visibly only in the database: a session's
number is taken when it is opened, so with several kernels sharing one database the
numbers follow the order in which they were opened rather than started.

Runs on whichever thread first needs the database (the shell's, or the worker thread of a
``history_request``); the opening is serialised by a lock.

Writing: IPython appends every cell to an in-memory cache under ``db_input_cache_lock`` and
its saving thread writes the cache to sqlite *holding that lock*, commit and fsync
included (milliseconds). The next cell's ``store_inputs`` then waited for the whole write
on the main thread: with entries written in batches of ten, a fifth of a millisecond of
every ``pass`` round trip on average. ``KernelHistoryManager`` takes the cache under the
lock (a swap) and writes outside it; one writer at a time, so a history request that
writes the cache out first still sees everything stored before it.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from typing import TYPE_CHECKING, Any

from IPython.core.history import HistoryManager, HistorySavingThread
from traitlets import default
from traitlets.config import Config

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


_CONSTRUCTING, _DEFERRED, _OPENING, _OPEN = range(4)


def defers(config: Config) -> bool:
    """Whether the shell may defer its history: not when the configuration sets ``enabled``
    either way (then IPython's own manager does exactly what was asked)."""
    return not any(section in config and "enabled" in config[section]
                   for section in ("HistoryManager", "HistoryAccessor"))


class DeferredHistory(KernelHistoryManager):
    """``HistoryManager`` whose database, session row and saving thread start on first use."""

    def __init__(self, **kwargs: Any) -> None:
        self._state = _CONSTRUCTING
        self._lock = threading.RLock()
        self._started = datetime.datetime.now().isoformat(" ")
        self._db: Any = None
        self._session_number = 0
        super().__init__(**kwargs)  # ``enabled`` reads False here: no sqlite, no thread
        self._state = _DEFERRED

    @default("enabled")
    def _enabled_default(self) -> bool:
        return False  # until ``_open`` finds out whether sqlite3 can be used

    # ``db`` and ``session_number`` are traits in IPython's classes; here they are plain
    # properties whose reading opens the database (the trait machinery is not needed:
    # IPython only validates the connection's type and reads the number back).
    @property
    def db(self) -> Any:
        self._ensure_open()
        return self._db

    @db.setter
    def db(self, value: Any) -> None:
        self._db = value

    @property
    def session_number(self) -> int:
        self._ensure_open()
        return self._session_number

    @session_number.setter
    def session_number(self, value: int) -> None:
        self._session_number = value

    @property
    def opened(self) -> bool:
        """Whether the database has been opened (for tests and the curious)."""
        return self._state == _OPEN

    def store_inputs(self, line_num: int, source: str, source_raw: str | None = None) -> None:
        super().store_inputs(line_num, source, source_raw)
        if self._state == _DEFERRED and len(self.db_input_cache) >= self.db_cache_size:
            self._ensure_open()  # writes the cache out

    def _ensure_open(self) -> None:
        if self._state == _OPEN or self._state == _CONSTRUCTING:
            return
        with self._lock:  # another thread opening: wait for it; this thread: re-entry
            if self._state != _DEFERRED:
                return
            self._state = _OPENING
            try:
                self._open()
            finally:
                self._state = _OPEN
        # The inputs cached so far, written outside the lock: a writer that holds a lock of
        # its own and then reads ``db`` waits above for the opening, and must get to finish.
        self.writeout_cache()

    def _open(self) -> None:
        """What ``HistoryManager.__init__`` does, done now."""
        try:
            import sqlite3  # IPython keeps history in memory only without it
        except ImportError:
            return
        self.enabled = True
        self.init_db()
        try:
            self.new_session()
        except sqlite3.OperationalError:
            self.log.error("Failed to create history session in %s. History will not be saved.",
                           self.hist_file, exc_info=True)
            self._switch_to_memory_history()
        else:
            self._backdate_session()
        if self.enabled and self.hist_file != ":memory:":
            self.save_thread = HistorySavingThread(self)
            try:
                self.save_thread.start()
            except RuntimeError:
                self.log.error("Failed to start history saving thread. History will not be saved.",
                               exc_info=True)
                self._switch_to_memory_history()
                self.save_thread = None
            else:
                self.using_thread = True

    def _backdate_session(self) -> None:
        """The session started when the shell was built, not when its database was opened."""
        with self._db:
            self._db.execute("UPDATE sessions SET start=? WHERE session==?",
                             (self._started, self._session_number))


__all__ = ["DeferredHistory", "KernelHistoryManager", "defers"]
