"""Threads, cross-loop calls and bounded hand-offs: the helpers every loop of the kernel uses.

The kernel runs several trio loops (the shell loop, the I/O thread's loop, one per subshell
and per thread cell) and one plain thread (the heartbeat). Three rules keep that sane, and
each has one helper here:

- every thread has an owner, a trio task that starts it, waits for it to end and reports
  what it raised: ``own_thread``;
- a call into another loop goes through ``call_soon``, which reports an exception raised
  by the callback (a raw ``TrioToken.run_sync_soon`` callback that raises crashes the
  target loop) and says when that loop has finished;
- a kernel-wide service that starts tasks later (background tasks, the asyncio loop, the
  GUI pump) owns a nursery for the kernel's life: ``KernelNursery``;
- a producer that must not outrun its consumer waits for ``Room`` (a counter bounded in
  items and bytes, waited for on one loop and released from any thread), so that a client's
  burst turns into zmq back-pressure rather than the kernel's memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("kernel.loops")


def call_soon(token: trio.lowlevel.TrioToken, fn: Callable[..., object], *args: Any) -> bool:
    """Run ``fn(*args)`` soon on the loop of ``token``, from any thread (also that loop's).

    Calls from one thread run in the order they were made. An exception ``fn`` raises is
    logged on the target loop instead of crashing it. Returns False, with a log line, when
    that loop has already finished (the call is dropped).
    """

    def guarded() -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s failed on its loop", getattr(fn, "__qualname__", fn))

    try:
        token.run_sync_soon(guarded)
    except trio.RunFinishedError:
        log.debug("%s dropped: its loop has finished", getattr(fn, "__qualname__", fn))
        return False
    return True


async def own_thread(fn: Callable[..., object], *args: Any, name: str, abandon_on_cancel: bool = False,
                     contain: bool = True) -> None:
    """Run ``fn(*args)`` in a worker thread owned by the calling task, and wait for it.

    Runs on the owner's loop. With ``contain`` an exception from the thread is logged and
    the owner carries on (a stray ``KeyboardInterrupt`` in a worker must not end the
    owner's loop); without, it is logged and raised. ``abandon_on_cancel``: when the owner
    is cancelled, stop waiting for a thread still blocked in one C call (a daemon thread,
    ended with the process) rather than hang the shutdown; the thread was asked to stop
    first by whoever cancels.
    """
    try:
        await trio.to_thread.run_sync(fn, *args, limiter=trio.CapacityLimiter(1),
                                      abandon_on_cancel=abandon_on_cancel)
    except trio.Cancelled:
        raise
    except BaseException as exc:
        log.error("%s ended with %r", name, exc, exc_info=not isinstance(exc, KeyboardInterrupt))
        if not contain:
            raise


class Room:
    """Room for ``limit`` items and ``max_bytes`` bytes; a single item may exceed the bytes.

    Room is taken (``try_acquire``) and waited for (``wait_for_room``) on one loop, the
    owner's, so room seen free there is still free when taken right after; ``release``
    may be called from any thread and crosses to the owner's loop only when the owner is
    waiting.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, limit: int, max_bytes: int) -> None:
        self._token = token
        self._limit = limit
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items = 0
        self._bytes = 0
        self._wakeup: trio.Event | None = None

    async def wait_for_room(self, size: int) -> None:
        """Wait until the item fits, without taking its room (on the owner's loop)."""
        while True:
            with self._lock:
                if self._fits(size):
                    return
                wakeup = self._wakeup = trio.Event()
            await wakeup.wait()

    def try_acquire(self, size: int) -> bool:
        """Take the item's room if it fits now (on the owner's loop); False: it does not."""
        with self._lock:
            if not self._fits(size):
                return False
            self._items += 1
            self._bytes += size
            return True

    def _fits(self, size: int) -> bool:
        """Under the lock."""
        return self._items < self._limit and (self._items == 0 or self._bytes + size <= self._max_bytes)

    def release(self, size: int) -> None:
        """Give an item's room back (any thread)."""
        with self._lock:
            self._items -= 1
            self._bytes -= size
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            call_soon(self._token, wakeup.set)

    @property
    def used(self) -> tuple[int, int]:
        """(items, bytes) currently held."""
        with self._lock:
            return self._items, self._bytes


class KernelNursery:
    """A nursery owned for the kernel's whole life, for tasks started later.

    ``run`` is started in the kernel's nursery and holds this one open until the kernel
    shuts down; ``_nursery`` is None before and after, ``_token`` names its loop.
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the nursery until cancelled (kernel shutdown)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
