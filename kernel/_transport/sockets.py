"""One trio task per zmq socket: the only code that receives from or sends on it.

pyzmq has no trio integration, so the task drives a non-blocking socket by hand. The
socket's FD is edge-triggered and means "events changed", not "readable", so the loop is:
send what the outbox holds (until zmq says ``Again``), receive until ``Again``, then park on
the FD. Because receiving and sending happen in the same task, a send that consumes the
FD's edge can never strand an incoming message. Other tasks and threads hand messages to
send through an ``Outbox``; putting into an empty outbox wakes the parked task through its
loop's ``TrioToken`` (thread-safe and signal-safe).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import trio
import zmq

from .._core import kipoint
from .._core.wire import Outgoing

log = logging.getLogger("kernel.sockets")

T = TypeVar("T")

RETRY_SECONDS = 0.005
"""How soon a socket task retries a send that zmq refused for a full queue."""


class Outbox(Generic[T]):
    """A thread-safe FIFO of things to send, drained by one socket task.

    Waking the owner costs a syscall on trio's wakeup socket, and, because that releases
    the GIL, often a wait of up to a GIL switch interval to get it back. So at most one
    wake is in flight: puts made before the owner has run the pending wake add nothing,
    the drain that follows that wake takes their items too.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, prepare: Callable[[Any], T] | None = None) -> None:
        self._prepare = prepare
        self._entries: list[T] = []
        self._lock = threading.Lock()
        self._token = token
        self._wake: Callable[[], None] = lambda: None
        self._wake_pending = False
        self._closed = False
        self.dropped_after_close = 0

    def bind_waker(self, wake: Callable[[], None]) -> None:
        """Called by the owning socket task with the callable that unparks it."""
        self._wake = wake

    @trio.lowlevel.enable_ki_protection
    def put(self, item: T) -> None:
        """Queue ``item`` for sending; safe from any thread.

        ``prepare`` (serialisation) runs here, in the caller's thread, so its errors are
        the caller's. Protected from KeyboardInterrupt (an interrupt between claiming the
        wake-up and sending it would silence the outbox for good); one deferred meanwhile
        is raised at the end (``kipoint``).
        """
        if self._prepare is not None:
            item = self._prepare(item)
        with self._lock:
            if self._closed:
                self._count_drop()
                return
            self._entries.append(item)
            need_wake = self._claim_wake()
        if need_wake:
            self._wake_owner()
        kipoint.deliver()

    def _count_drop(self) -> None:
        """Under the lock: one more message nobody will send; said once, in the log."""
        self.dropped_after_close += 1
        if self.dropped_after_close == 1:
            log.warning("output after its kernel closed (an abandoned thread?) is dropped")

    def close(self) -> None:
        """The socket task is gone: later puts are counted and dropped, not kept forever."""
        with self._lock:
            self._closed = True

    def _claim_wake(self) -> bool:
        """Under the lock: True when this put must wake the owner."""
        if self._wake_pending:
            return False
        self._wake_pending = True
        return True

    def _on_wake(self) -> None:
        """Runs on the owner's loop; cleared before the owner drains, so nothing is missed."""
        self._wake_pending = False
        self._wake()

    def _wake_owner(self) -> None:
        """Raw ``run_sync_soon`` rather than ``loops.call_soon``: this is the hot path of
        every message sent, and ``_on_wake`` only cancels a scope (it cannot raise)."""
        try:
            self._token.run_sync_soon(self._on_wake)
        except trio.RunFinishedError:
            log.debug("outbox put after its loop finished; item dropped at shutdown")

    def take_all(self, final: bool = False) -> list[Any]:
        """Everything queued, in order (on the owner's loop)."""
        with self._lock:
            entries, self._entries = self._entries, []
        return entries

    def hold_for(self) -> float | None:
        """Seconds until items deliberately left queued should be taken (None: none are)."""
        return None

    def __len__(self) -> int:
        return len(self._entries)


class SocketTask:
    """Owns one zmq socket inside one trio loop."""

    def __init__(self, sock: zmq.Socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self._park_scope: trio.CancelScope | None = None
        self._dirty = False
        self._stalled = False
        self._unsent: collections.deque[list[bytes]] = collections.deque()

    def wake(self) -> None:
        """Unpark the task (runs on the task's own loop via ``run_sync_soon``)."""
        self._dirty = True
        if self._park_scope is not None:
            self._park_scope.cancel()

    def resume(self) -> None:
        """The consumer made room: read on if reading had stopped (on the task's own loop)."""
        if self._stalled:
            self._stalled = False
            self.wake()

    async def run(
        self,
        on_frames: Callable[[list[bytes]], None] | None,
        outbox: Outbox[Outgoing] | None,
        encode: Callable[[Outgoing], list[bytes]],
        can_receive: Callable[[], bool] | None = None,
    ) -> None:
        """Serve the socket until cancelled.

        ``on_frames`` is called synchronously for each received multipart message (it
        must not block); ``outbox`` holds messages to send in order, encoded here with
        ``encode`` so that signing happens on this loop's thread only. While zmq refuses
        to send (high-water mark), nothing more is taken from the outbox, so its producers
        feel the back-pressure instead of memory growing here. Likewise, while
        ``can_receive`` says no (the consumer's small inbox is full), nothing more is read
        until ``resume``: messages wait in zmq, whose high-water mark pushes back on the
        client. Sending goes on meanwhile.
        """
        if outbox is not None:
            outbox.bind_waker(self.wake)
        sock = self.sock
        fd = sock.FD
        while True:
            self._dirty = False
            if outbox is not None:
                self._send_pending(outbox, encode)
            if on_frames is not None:
                self._receive_all(on_frames, can_receive)
            events = cast(int, sock.getsockopt(zmq.EVENTS))
            readable = on_frames is not None and not self._stalled and events & zmq.POLLIN
            if self._dirty or readable:
                await trio.lowlevel.checkpoint()
                continue
            with trio.CancelScope() as self._park_scope:
                if self._unsent:
                    # zmq refused to queue more (a slow peer): its FD need not signal when
                    # room appears, so look again shortly.
                    self._park_scope.deadline = trio.current_time() + RETRY_SECONDS
                held = outbox.hold_for() if outbox is not None else None
                if held is not None:
                    self._park_scope.deadline = min(self._park_scope.deadline, trio.current_time() + held)
                await trio.lowlevel.wait_readable(fd)
            self._park_scope = None

    def flush(self, outbox: Outbox[Outgoing], encode: Callable[[Outgoing], list[bytes]],
              deadline: float) -> None:
        """Send everything still queued, blocking until ``deadline`` (``time.monotonic``).

        Used once at shutdown, after the socket tasks were cancelled (the I/O loop itself
        still runs, and is held for at most the deadline), so that the messages queued
        just before the shutdown are not lost.
        """
        while len(outbox) or self._unsent:
            self._send_pending(outbox, encode, final=True)
            remaining = deadline - time.monotonic()
            if self._unsent and (remaining <= 0 or not self.sock.poll(int(remaining * 1000), zmq.POLLOUT)):
                log.warning("%s: %d messages not sent at shutdown", self.name, len(self._unsent) + len(outbox))
                return

    def _receive_all(self, on_frames: Callable[[list[bytes]], None], can_receive: Callable[[], bool] | None) -> None:
        sock = self.sock
        for _ in range(1000):
            if can_receive is not None and not can_receive():
                self._stalled = True
                return
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            on_frames(frames)
        self._dirty = True  # more may be waiting: come back after other tasks ran

    def _send_pending(self, outbox: Outbox[Outgoing], encode: Callable[[Outgoing], list[bytes]],
                      final: bool = False) -> None:
        if not self._unsent:
            for out in outbox.take_all(final):
                try:
                    self._unsent.append(encode(out))
                except Exception:
                    log.exception("%s: could not encode a %s message", self.name, out.msg_type)
        while self._unsent:
            try:
                self.sock.send_multipart(self._unsent[0], zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                # EHOSTUNREACH: the peer the reply is for has gone; nobody is left to read it.
                log.warning("%s: dropped an outgoing message: %s", self.name, exc)
            self._unsent.popleft()
        if len(outbox) and outbox.hold_for() is None:
            self._dirty = True
