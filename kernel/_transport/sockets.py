"""One trio task per zmq socket: the only code that receives from or sends on it.

pyzmq has no trio integration, so the task drives a non-blocking socket by hand. The
socket's FD is edge-triggered and means "events changed", not "readable", so the loop is:
send what the outbox holds (until zmq says ``Again``), receive until ``Again``, then park on
the FD. Because receiving and sending happen in the same task, a send that consumes the
FD's edge can never strand an incoming message. Other tasks and threads hand messages to
send through an ``Outbox``; putting into an empty outbox wakes the parked task through its
loop's ``LoopWaker`` (thread-safe and signal-safe), which every outbox of that loop shares.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

import trio
import zmq

from .._core import kipoint
from .._core.wire import Outgoing

log = logging.getLogger("kernel.sockets")

T = TypeVar("T")

RETRY_SECONDS = 0.005
"""How soon a socket task retries a send that zmq refused for a full queue."""


class LoopWaker:
    """Wakes the socket tasks of one trio loop from any thread, one wake-up at a time.

    A wake-up costs a syscall on trio's wakeup socket, and, because that releases the GIL,
    a GIL hand-off to the woken thread, which the caller then waits to get back. A cell
    answers on two sockets (busy, output, reply, idle), so the outboxes of a loop share one
    waker: while a wake-up is in flight, waking another outbox only adds it to the list
    that wake-up serves, and costs no syscall.

    A thread may also *hold* its wake-ups (``holding``) while it runs a short stretch of
    kernel code that sends several messages and cannot block (a shell answering a
    request, before and after the cell's code): the wake-up is made once, when it lets
    go. Otherwise the woken I/O thread takes the GIL at the holder's next release and
    the holder waits for that thread's whole step, twice per cell.
    """

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        """Built on the loop's own thread."""
        self._token = token
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._due: list[Callable[[], None]] = []
        self._owed = False
        """A holder deferred the wake-up of what is due (under ``_lock``)."""
        self._holds = threading.local()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Defer this thread's wake-ups until the block ends (nests; the block must not
        wait for anything, or what other threads send waits with it)."""
        self._holds.depth = self._depth() + 1
        try:
            yield
        finally:
            self._holds.depth -= 1
            if not self._holds.depth:
                self._pay()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Inside ``holding``: wake-ups go out at once again for the block (the cell's own
        code, which may block, and whose output must not wait)."""
        depth = self._depth()
        self._holds.depth = 0
        if depth:
            self._pay()
        try:
            yield
        finally:
            self._holds.depth = depth

    def _depth(self) -> int:
        """How deep the calling thread holds its wake-ups (0: it does not)."""
        return int(getattr(self._holds, "depth", 0))

    def _pay(self) -> None:
        with self._lock:
            owed, self._owed = self._owed, False
        if owed:
            self._signal()

    def wake(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` soon on the loop (any thread), or now when called on the loop's
        own thread (a put by the I/O loop itself: no wake-up syscall, nothing to wait for).
        Raw ``run_sync_soon`` rather than ``loops.call_soon`` (this is the hot path of
        every message sent): ``_run_due`` guards the callbacks itself."""
        if threading.get_ident() == self._loop_thread:
            self._run_guarded(callback)
            return
        with self._lock:
            first = not self._due
            self._due.append(callback)
            if first and self._depth() > 0:
                self._owed = True
                return
        if first:
            self._signal()

    def _signal(self) -> None:
        try:
            self._token.run_sync_soon(self._run_due)
        except trio.RunFinishedError:
            log.debug("outbox put after its loop finished; item dropped at shutdown")

    def _run_due(self) -> None:
        with self._lock:
            due, self._due = self._due, []
        for callback in due:
            self._run_guarded(callback)

    @staticmethod
    def _run_guarded(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # raised out of a run_sync_soon callback, it would end the loop
            log.exception("sending from a wake-up failed")


class Outbox(Generic[T]):
    """A thread-safe FIFO of things to send, drained by one socket task.

    At most one wake of the owner is in flight per outbox (and per loop, see
    ``LoopWaker``): puts made before the owner has run the pending wake add nothing, the
    drain that follows that wake takes their items too.
    """

    def __init__(self, waker: LoopWaker | trio.lowlevel.TrioToken,
                 prepare: Callable[[Any], T] | None = None) -> None:
        self._prepare = prepare
        self._entries: list[T] = []
        self._lock = threading.Lock()
        self._waker = waker if isinstance(waker, LoopWaker) else LoopWaker(waker)
        self._wake: Callable[[], None] = lambda: None
        self._wake_pending = False
        self._closed = False
        self.dropped_after_close = 0

    @property
    def waker(self) -> LoopWaker:
        """The waker this outbox shares with the other outboxes of its loop."""
        return self._waker

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
            self._append(item)
            need_wake = self._claim_wake()
        if need_wake:
            self._wake_owner()
        kipoint.deliver()

    def _append(self, item: T) -> None:
        """Under the lock: queue one item (a subclass may note what it ends)."""
        self._entries.append(item)

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
        self._waker.wake(self._on_wake)

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

    def _send_woken(self, outbox: Outbox[Outgoing], encode: Callable[[Outgoing], list[bytes]],
                    can_read: Callable[[], bool]) -> None:
        """The outbox has news (on the task's loop, from its waker's callback).

        A parked task sends right here instead of being unparked: that saves a loop turn
        and two epoll registrations per wake-up, the bulk of the I/O thread's cost of a
        cell. It is still unparked when something is left to do: messages zmq refused, or
        input that arrived (a send may consume the FD's edge, so zmq's own events are
        asked). Text the outbox holds back (``hold_for``) only moves the park's deadline:
        unparking would look at it again at once, and a second look sends it.
        """
        park = self._park_scope
        if park is None:
            self._dirty = True  # running: its loop takes the outbox next
            return
        self._send_pending(outbox, encode)
        if self._unsent or can_read():
            self.wake()
            return
        held = outbox.hold_for()
        if held is not None:  # text held back on purpose: look again when it is due, not now
            park.deadline = min(park.deadline, trio.current_time() + held)
        elif len(outbox):
            self.wake()

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
        sock = self.sock
        fd = sock.FD

        def can_read() -> bool:
            return on_frames is not None and not self._stalled and bool(
                cast(int, sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

        if outbox is not None:
            outbox.bind_waker(lambda: self._send_woken(outbox, encode, can_read))
        while True:
            self._dirty = False
            if outbox is not None:
                self._send_pending(outbox, encode)
            if on_frames is not None:
                self._receive_all(on_frames, can_receive)
            if self._dirty or can_read():
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
