"""The heartbeat: an echo socket on a thread of its own.

It must answer while user code holds the shell thread and while the I/O loop is busy, so
it shares nothing with them. The thread is started and joined by a trio task (see
``_kernel``); it polls with a short timeout so that the owner can stop it.
"""

from __future__ import annotations

import threading

import zmq


def serve_heartbeat(sock: zmq.Socket, stop: threading.Event, poll_ms: int = 100) -> None:
    """Echo every message on ``sock`` until ``stop`` is set (runs in its own thread)."""
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stop.is_set():
        if poller.poll(poll_ms):
            try:
                sock.send_multipart(sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                continue
