"""The heartbeat: an echo that runs in C, on a thread of its own.

It must answer while user code holds the shell thread, while the I/O loop is busy, and
while a C call holds the GIL for seconds (a catastrophic regular expression): so the echo
is ``zmq.proxy_steerable`` on the heartbeat's ROUTER socket with itself as both ends, a
loop inside libzmq that runs without the GIL. A ROUTER routes each echoed message back to
the peer that sent it. The thread is started and joined by a trio task (``_app.kernel``),
which stops the proxy by sending ``TERMINATE`` on a PAIR control socket.
"""

from __future__ import annotations

import contextlib
import itertools
import os

import attrs
import zmq

_names = itertools.count()


@attrs.define
class HeartbeatControl:
    """The two ends of the proxy's control pipe: the thread reads ``inner``, the owner
    writes ``outer``. Each end is used by one thread only."""

    outer: zmq.Socket
    inner: zmq.Socket

    @classmethod
    def open(cls, context: zmq.Context) -> HeartbeatControl:
        address = f"inproc://trio-kernel-heartbeat-{os.getpid()}-{next(_names)}"
        outer = context.socket(zmq.PAIR)
        outer.setsockopt(zmq.LINGER, 0)
        outer.bind(address)
        inner = context.socket(zmq.PAIR)
        inner.setsockopt(zmq.LINGER, 0)
        inner.connect(address)
        return cls(outer, inner)

    def stop(self) -> None:
        """Ask the proxy to return (from the owner's thread)."""
        self.outer.send(b"TERMINATE")

    def close(self) -> None:
        """After the heartbeat thread has ended."""
        self.outer.close(linger=0)
        self.inner.close(linger=0)


def serve_heartbeat(sock: zmq.Socket, control: HeartbeatControl) -> None:
    """Echo every message on ``sock`` until ``control.stop()`` (runs in its own thread)."""
    with contextlib.suppress(zmq.ContextTerminated):
        zmq.proxy_steerable(sock, sock, None, control.inner)
