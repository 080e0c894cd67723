"""The iopub outbox: ordered, coalesced and bounded, never lossy.

Any thread may publish. Stream text (``print``) is appended to the newest pending stream
entry when it has the same parent and stream name, so a tight ``print`` loop becomes a few
large ``stream`` messages instead of one message per ``write()``. Any other message is
queued behind the text already written, which keeps the order a reader expects (the
output of a cell, then its ``error``, then ``idle``).

Back-pressure instead of loss: when more than ``max_pending`` characters of stream text
wait to be sent (a slow or absent reader with ``XPUB_NODROP``), ``write_stream`` blocks
its caller until the socket task has taken them. Only user-code threads write streams;
the I/O thread only takes, so this never deadlocks the loop that drains it. Status
messages and replies are never held back by this bound.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
import trio

from .._core import kipoint
from .._core.wire import Outgoing, freeze
from .._transport.sockets import Outbox

MAX_MESSAGE_BYTES = 1 << 18
"""No stream message carries more text than this (UTF-8 bytes, counted as an upper bound:
one byte per character of ASCII text, four otherwise)."""
HOLD_SECONDS = 0.005
"""How long an unfinished line just written may wait for the rest of itself."""
MAX_HOLD_SECONDS = 0.05
"""Output without newlines (a progress bar) still goes out at least this often."""


def _utf8_bound(text: str) -> int:
    """An upper bound of ``text``'s UTF-8 size, in O(1) (CPython knows if a str is ASCII)."""
    return len(text) if text.isascii() else 4 * len(text)


_ALWAYS_FITS = MAX_MESSAGE_BYTES // 4
"""Text of at most this many characters is within the limit whatever it holds."""


def _chars_within_limit(text: str) -> int:
    return MAX_MESSAGE_BYTES if text.isascii() else MAX_MESSAGE_BYTES // 4


@attrs.define
class _StreamRun:
    parent: dict[str, Any]
    name: str
    chunks: list[str]
    size: int
    first_write: float
    last_write: float

    def worth_holding(self, now: float) -> bool:
        """An unfinished line written a moment ago: ``print("a", x)`` writes in pieces, and
        sending the first alone would split one line over two outputs of the notebook."""
        return (
            not self.chunks[-1].endswith("\n")
            and now - self.last_write < HOLD_SECONDS
            and now - self.first_write < MAX_HOLD_SECONDS
            and self.size < MAX_MESSAGE_BYTES
        )

    def to_outgoing(self) -> Outgoing:
        return Outgoing("stream", {"name": self.name, "text": "".join(self.chunks)}, self.parent)


class IOPubOutbox(Outbox["Outgoing | _StreamRun"]):
    """The outbox of the iopub socket, with stream coalescing and back-pressure."""

    def __init__(self, token: trio.lowlevel.TrioToken, max_pending: int = 8 << 20) -> None:
        super().__init__(token, prepare=freeze)
        self._pending_chars = 0
        self._max_pending = max_pending
        self._drained = threading.Condition(self._lock)
        self._held_until: float | None = None

    def write_stream(self, parent: dict[str, Any], name: str, text: str) -> None:
        """Queue ``text`` for stream ``name``; may block while too much text waits.

        Text is cut into pieces so that no stream message exceeds ``MAX_MESSAGE_BYTES``
        of UTF-8 (a single 100 MB line becomes many messages).
        """
        length = len(text)
        now = time.monotonic()
        if length <= _ALWAYS_FITS:  # the hot path (a print): no cutting, no extra calls
            if length:
                if self._pending_chars > self._max_pending:
                    self._wait_for_room()
                self._write_piece(parent, name, text, length if text.isascii() else 4 * length, now)
            return
        limit = _chars_within_limit(text)
        for start in range(0, length, limit):
            piece = text[start:start + limit]
            self._wait_for_room()
            self._write_piece(parent, name, piece, _utf8_bound(piece), now)

    def _wait_for_room(self) -> None:
        """Block while too much text waits (interruptible, unlike ``_write_piece``)."""
        with self._lock:
            while self._pending_chars > self._max_pending and not self._closed:
                self._drained.wait(timeout=1.0)

    @trio.lowlevel.enable_ki_protection
    def _write_piece(self, parent: dict[str, Any], name: str, text: str, size: int, now: float) -> None:
        """Protected from KeyboardInterrupt like ``Outbox.put``; one deferred meanwhile is
        raised at the end (``kipoint``)."""
        with self._lock:
            if self._closed:  # an abandoned thread printing after its kernel closed
                self._count_drop()
                return
            last = self._entries[-1] if self._entries else None
            if (
                isinstance(last, _StreamRun)
                and last.name == name
                and last.parent is parent
                and last.size + size <= MAX_MESSAGE_BYTES
            ):
                last.chunks.append(text)
                last.size += size
                last.last_write = now
            else:
                self._entries.append(_StreamRun(parent, name, [text], size, now, now))
            self._pending_chars += size
            need_wake = self._claim_wake()
        if need_wake:
            self._wake_owner()
        kipoint.deliver()

    def take_all(self, final: bool = False) -> list[Outgoing]:
        """Everything queued, in order, except an unfinished line written a moment ago
        (unless ``final``): ``hold_for`` then says when to come back for it."""
        now = time.monotonic()
        with self._lock:
            entries, self._entries = self._entries, []
            held = entries[-1] if entries and isinstance(entries[-1], _StreamRun) else None
            if held is not None and not final and held.worth_holding(now):
                self._entries.append(entries.pop())
                self._held_until = held.last_write + HOLD_SECONDS
            else:
                self._held_until = None
            self._pending_chars = sum(e.size for e in self._entries if isinstance(e, _StreamRun))
            self._drained.notify_all()
        return [e.to_outgoing() if isinstance(e, _StreamRun) else e for e in entries]

    def hold_for(self) -> float | None:
        held_until = self._held_until
        if held_until is None or not self._entries:
            return None
        return max(held_until - time.monotonic(), 0.0)

    def close(self) -> None:
        """Stop blocking writers and drop later output: nothing will drain it any more."""
        with self._lock:
            self._closed = True
            self._drained.notify_all()
