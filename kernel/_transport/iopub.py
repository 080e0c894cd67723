"""The iopub outbox: ordered, coalesced and bounded, never lossy.

Any thread may publish. Stream text (``print``) is appended to the newest pending stream
entry when it has the same parent and stream name, so a tight ``print`` loop becomes a few
large ``stream`` messages instead of one message per ``write()``. Any other message is
queued behind the text already written, which keeps the order a reader expects (the
output of a cell, then its ``error``, then ``idle``).

Few wake-ups: each wake-up of the I/O thread while a cell prints costs the writer a GIL
hand-off, so a flood is sent in batches. Text written after silence wakes the I/O thread
at once; once it has sent stream text, the I/O thread comes back by itself after
``BATCH_SECONDS`` and writes meanwhile only append (under the lock, with no clock read and
no wake-up), unless a message's worth (``MAX_MESSAGE_BYTES``) is waiting, another kind of
message is queued (``display``, ``error``, ``idle``: they take the text before them) or
the stream is flushed. A lone ``print`` still goes out at once; in a flood, text waits at
most ``BATCH_SECONDS`` (plus a GIL switch interval) before it is sent.

Back-pressure instead of loss: when more than ``max_pending`` characters of stream text
wait to be sent (a slow or absent reader with ``XPUB_NODROP``), ``write_stream`` blocks
its caller until the socket task has taken them. Only user-code threads write streams;
the I/O thread only takes, so this never deadlocks the loop that drains it. Status
messages and replies are never held back by this bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .._core import kipoint
from .._core.wire import Outgoing, freeze
from .._transport.sockets import LoopWaker, Outbox

MAX_MESSAGE_BYTES = 1 << 18
"""No stream message carries more text than this (UTF-8 bytes, counted as an upper bound:
one byte per character of ASCII text, four otherwise). Also the amount of waiting text
that wakes the I/O thread before its batch is due."""
BATCH_SECONDS = 0.01
"""After sending stream text, the I/O thread takes the text written since at most this
much later (sooner when a message's worth waits, or anything else is queued)."""
HOLD_SECONDS = 0.005
"""How long an unfinished line just written may wait for the rest of itself."""
MAX_HOLD_SECONDS = 0.05
"""Output without newlines (a progress bar) still goes out at least this often."""

_ALWAYS_FITS = MAX_MESSAGE_BYTES // 4
"""Text of at most this many characters is within the limit whatever it holds."""


def _checked_str(text: object) -> str:
    if isinstance(text, str):
        return text
    raise TypeError(f"write() argument must be str, not {type(text).__name__}")


def split_for_messages(text: str) -> list[str]:
    """``text`` cut into pieces of at most ``MAX_MESSAGE_BYTES`` of UTF-8 each."""
    if len(text) <= _ALWAYS_FITS:
        return [text]
    limit = MAX_MESSAGE_BYTES if text.isascii() else _ALWAYS_FITS
    return [text[start:start + limit] for start in range(0, len(text), limit)]


@attrs.define
class _StreamRun:
    """Consecutive writes to one stream of one cell, not yet taken. Only the newest entry
    of the outbox (``IOPubOutbox._tail``) is ever extended."""

    parent: dict[str, Any]
    name: str
    chunks: list[str]
    first_write: float
    seen: int = -1
    """Its length when the I/O thread last looked (an unfinished line that did not grow
    since then is sent)."""

    def text(self) -> str:
        """All of it, joined once (on the I/O thread, under the outbox lock)."""
        if len(self.chunks) > 1:
            self.chunks[:] = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""

    def to_outgoing(self) -> list[Outgoing]:
        text = self.text()
        return [Outgoing("stream", {"name": self.name, "text": piece}, self.parent)
                for piece in split_for_messages(text)] if text else []


class IOPubOutbox(Outbox["Outgoing | _StreamRun"]):
    """The outbox of the iopub socket, with stream coalescing, batching and back-pressure."""

    def __init__(self, token: LoopWaker | trio.lowlevel.TrioToken, max_pending: int = 8 << 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(token, prepare=freeze)
        self._clock = clock
        self._pending_chars = 0
        """Characters of stream text not yet taken (the back-pressure bound's measure)."""
        self._max_pending = max_pending
        self._drained = threading.Condition(self._lock)
        self._tail: _StreamRun | None = None
        """The newest entry when it is stream text: the one a write may extend."""
        self._quiet_up_to = -1
        """Writes that keep the pending text at or below this neither wake nor wait: -1
        when the I/O thread is idle, ``MAX_MESSAGE_BYTES`` during a batch, ``max_pending``
        once a wake-up is on its way."""
        self._take_at: float | None = None
        """When the I/O thread comes back by itself (``hold_for``)."""
        self._batching = False
        """``_take_at`` ends a batch (rather than the wait for an unfinished line)."""
        self._flushed = False
        """A stream was flushed: the next take sends everything."""

    @trio.lowlevel.enable_ki_protection
    def write_stream(self, parent: dict[str, Any], name: str, text: str) -> int:
        """Queue ``text`` for stream ``name`` (any thread); may block while too much text
        waits. Returns the number of characters written; a non-str raises TypeError.

        The common case (a ``print`` in a loop) extends the newest run under the lock and
        returns: no clock, no wake-up, no allocation but the list slot.
        """
        if type(text) is not str:  # a str subclass is fine, anything else is the caller's error
            text = _checked_str(text)
        length = len(text)
        if length > _ALWAYS_FITS:  # one huge write: in pieces, each of which may wait for room
            for start in range(0, length, _ALWAYS_FITS):
                self._write_slow(parent, name, text[start:start + _ALWAYS_FITS])
            return length
        lock = self._lock
        lock.acquire()
        try:
            tail = self._tail
            pending = self._pending_chars + length
            if tail is not None and pending <= self._quiet_up_to and tail.parent is parent and tail.name == name:
                tail.chunks.append(text)
                self._pending_chars = pending
                return length
        finally:
            lock.release()
        self._write_slow(parent, name, text)
        return length

    @trio.lowlevel.disable_ki_protection
    def _wait_for_room(self) -> None:
        """Block while too much text waits (interruptible, unlike the rest of a write)."""
        with self._lock:
            while self._pending_chars > self._max_pending and not self._closed:
                self._drained.wait(timeout=1.0)

    def _write_slow(self, parent: dict[str, Any], name: str, text: str) -> None:
        """Start a new run, wait for room, or wake the I/O thread. Protected from
        KeyboardInterrupt (through ``write_stream``) but for the wait for room; one deferred
        meanwhile is raised at the end (``kipoint``)."""
        if self._pending_chars > self._max_pending:
            self._wait_for_room()
        with self._lock:
            if self._closed:  # an abandoned thread printing after its kernel closed
                self._count_drop()
                return
            tail = self._tail
            if tail is None or tail.parent is not parent or tail.name != name:
                tail = _StreamRun(parent, name, [], self._clock())
                self._entries.append(tail)
                self._tail = tail
            tail.chunks.append(text)
            self._pending_chars += len(text)
            need_wake = False
            if self._pending_chars > self._quiet_up_to:
                need_wake = self._claim_wake()
                self._quiet_up_to = self._max_pending  # a wake-up is on its way (ours or one before)
        if need_wake:
            self._wake_owner()
        kipoint.deliver()

    def _append(self, item: Outgoing | _StreamRun) -> None:
        """Under the lock: a message that is not stream text; later writes start a new run
        (reset under the same lock, so a write from another thread cannot slip into the
        run before it)."""
        self._entries.append(item)
        self._tail = None

    @trio.lowlevel.enable_ki_protection
    def flush_streams(self) -> None:
        """``sys.stdout.flush()``: send what was written now, unfinished line included
        (protected like a write, see ``kipoint``)."""
        with self._lock:
            if self._tail is None or self._flushed:
                return
            self._flushed = True
            need_wake = self._claim_wake()
            self._quiet_up_to = self._max_pending
        if need_wake:
            self._wake_owner()
        kipoint.deliver()

    def take_all(self, final: bool = False) -> list[Outgoing]:
        """Everything queued, in order (on the I/O loop), except stream text that a batch
        or an unfinished line holds back (unless ``final``): ``hold_for`` then says when to
        come back."""
        now = self._clock()
        with self._lock:
            entries, self._entries = self._entries, []
            tail = self._tail
            held = None
            take_at = None
            if tail is not None and entries and entries[-1] is tail and not final:
                entries.pop()
                held, take_at, self._batching = self._hold(tail, now, entries)
                if held is not None:
                    self._entries.append(held)
            self._tail = held
            self._pending_chars = 0 if held is None else len(held.text())
            self._take_at = take_at
            self._flushed = False
            self._quiet_up_to = -1 if take_at is None else min(MAX_MESSAGE_BYTES, self._max_pending)
            self._drained.notify_all()
        out: list[Outgoing] = []
        for entry in entries:
            if isinstance(entry, _StreamRun):
                out.extend(entry.to_outgoing())
            else:
                out.append(entry)
        return out

    def _hold(self, tail: _StreamRun, now: float,
              sent: list[Outgoing | _StreamRun]) -> tuple[_StreamRun | None, float | None, bool]:
        """Under the lock: what of the newest run to keep back, until when, and whether
        that ends a batch. Text to send now is appended to ``sent``."""
        if self._flushed or self._pending_chars >= MAX_MESSAGE_BYTES:
            sent.append(tail)
            return None, now + BATCH_SECONDS, True
        if self._batching and self._take_at is not None and now < self._take_at:
            return tail, self._take_at, True  # woken before the batch is due: wait for it
        text = tail.text()
        if not text:
            return None, None, False
        grew, tail.seen = len(text) != tail.seen, len(text)
        if grew and not text.endswith("\n") and now - tail.first_write < MAX_HOLD_SECONDS:
            cut = text.rfind("\n") + 1
            if not cut:  # one unfinished line: give it a moment to end
                return tail, now + HOLD_SECONDS, False
            sent.append(attrs.evolve(tail, chunks=[text[:cut]]))
            rest = _StreamRun(tail.parent, tail.name, [text[cut:]], now, seen=len(text) - cut)
            return rest, now + BATCH_SECONDS, True
        sent.append(tail)
        return None, now + BATCH_SECONDS, True

    def hold_for(self) -> float | None:
        """Seconds until the I/O thread should take again by itself (None: when woken)."""
        take_at = self._take_at
        if take_at is None:
            return None
        return max(take_at - self._clock(), 0.0)

    def close(self) -> None:
        """Stop blocking writers and drop later output: nothing will drain it any more."""
        with self._lock:
            self._closed = True
            self._quiet_up_to = -1  # later writes take the slow path, which drops them
            self._drained.notify_all()
