"""A trio TCP server with a Jupyter kernel inside it.

The server speaks a line protocol over plain trio streams::

    GET            -> "counter N"
    INCR n         -> "counter N" (after adding n)
    CLIENTS        -> "clients N"
    anything else  -> "error: ..."

and the kernel, started with ``kernel.open_kernel``, runs cells on the server's own trio
loop with the live ``server`` object in their namespace, so a notebook or console can look
at and change the running server::

    python examples/embedded_server.py --port 8123
    jupyter console --existing /path/printed/on/startup.json

    In [1]: server.counter
    In [2]: server.counter += 5
    In [3]: await server.broadcast("hello from the kernel")

It stops on Ctrl-C, SIGTERM or a ``shutdown_request`` (``exit`` in jupyter console), and the
kernel cleans up after itself: sockets closed, connection file removed.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Awaitable, Callable
from functools import partial

import trio

import kernel


class Server:
    """The application's state, shared by the connection tasks and the kernel's cells."""

    def __init__(self) -> None:
        self.counter = 0
        self.clients: list[trio.SocketStream] = []
        self.port: int | None = None

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one client (a task of ``serve_tcp``'s nursery) until it disconnects."""
        self.clients.append(stream)
        print(f"client connected ({len(self.clients)} now)", flush=True)
        buffer = b""
        try:
            async for data in stream:
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    await stream.send_all(self.answer(line.decode("utf-8", "replace").strip()).encode() + b"\n")
        except trio.BrokenResourceError:
            pass
        finally:
            self.clients.remove(stream)
            print(f"client disconnected ({len(self.clients)} now)", flush=True)

    def answer(self, line: str) -> str:
        """The reply to one request line (pure: no I/O)."""
        command, _, argument = line.partition(" ")
        if command == "GET":
            return f"counter {self.counter}"
        if command == "INCR":
            try:
                self.counter += int(argument or "1")
            except ValueError:
                return f"error: INCR wants an integer, got {argument!r}"
            return f"counter {self.counter}"
        if command == "CLIENTS":
            return f"clients {len(self.clients)}"
        return f"error: unknown command {command!r}"

    async def broadcast(self, text: str) -> int:
        """Send ``text`` as a line to every connected client; return how many got it."""
        sent = 0
        for stream in list(self.clients):
            try:
                await stream.send_all(f"{text}\n".encode())
                sent += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        return sent


async def main(host: str, port: int) -> None:
    server = Server()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, port, host=host))
        server.port = listeners[0].socket.getsockname()[1]
        print(f"serving on {host}:{server.port}", flush=True)
        async with kernel.open_kernel({"server": server, "trio": trio}, name="embedded-server") as k:
            print(f"kernel connection file: {k.connection_file}", flush=True)
            print(f"attach with: jupyter console --existing {k.connection_file}", flush=True)
            async with trio.open_nursery() as waiters:
                stop = waiters.cancel_scope.cancel
                waiters.start_soon(_then, k.wait_for_shutdown, stop)
                waiters.start_soon(_then, _terminated, stop)
        print("kernel closed; stopping", flush=True)
        nursery.cancel_scope.cancel()


async def _then(waiter: Callable[[], Awaitable[object]], action: Callable[[], None]) -> None:
    await waiter()
    action()


async def _terminated() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    trio.run(main, args.host, args.port)
