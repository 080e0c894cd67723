"""A DAP client over TCP to debugpy's adapter, on the I/O loop.

One ``DAPClient`` is one connection (one debug session, ``initialize`` to ``disconnect``).
Its ``run`` task is the connection's only reader; it is started in the I/O loop's nursery and
ends when the connection closes or that nursery is cancelled. Requests get sequence numbers
of our own (several frontends, and the kernel itself, may have requests in flight at once)
and are matched to responses by ``request_seq``; each wait has a timeout. Events are passed
to ``on_event`` as they arrive, and every response to ``on_response`` before its waiter
wakes, so both callbacks see debugpy's messages in the order debugpy sent them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from .._debugger.dap import DAPBuffer, DAPError, frame

log = logging.getLogger("kernel.debugger")


class Pending:
    """A request sent and not yet answered."""

    def __init__(self, command: str, arguments: dict[str, Any] | None) -> None:
        self.command = command
        self.arguments = arguments or {}
        self.done = trio.Event()
        self.response: dict[str, Any] | None = None

    def resolve(self, response: dict[str, Any]) -> None:
        self.response = response
        self.done.set()


class DAPClient:
    """Requests out, responses matched to requests, events to a callback."""

    def __init__(self, stream: trio.abc.Stream, on_event: Callable[[dict[str, Any]], None],
                 timeout: float,
                 on_response: Callable[[Pending, dict[str, Any]], None] = lambda pending, response: None,
                 ) -> None:
        self._stream = stream
        self.timeout = timeout
        self._on_event = on_event
        self._on_response = on_response
        self._send_lock = trio.Lock()
        self._seq = 0
        self._pending: dict[int, Pending] = {}
        self.closed = trio.Event()

    async def run(self) -> None:
        """Read until the connection ends; then fail every pending request."""
        buffer = DAPBuffer()
        try:
            while True:
                data = await self._stream.receive_some(65536)
                if not data:
                    log.info("debugpy closed the DAP connection")
                    break
                for message in buffer.feed(data):
                    self._dispatch(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.info("DAP connection ended: %s", exc)
        except DAPError:
            log.exception("debugpy sent bad DAP framing; dropping the connection")
        finally:
            self.closed.set()
            for seq, pending in list(self._pending.items()):
                pending.resolve(_lost(seq, pending.command))

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            log.debug("DAP event %s", message.get("event"))
            try:
                self._on_event(message)
            except Exception:
                log.exception("handling DAP event %r failed", message.get("event"))
        elif kind == "response":
            pending = self._pending.get(message.get("request_seq", -1))
            if pending is None:
                log.warning("DAP response to no request: %r", message.get("request_seq"))
                return
            try:
                self._on_response(pending, message)
            except Exception:
                log.exception("handling the DAP response to %r failed", pending.command)
            pending.resolve(message)
        else:
            log.warning("ignoring DAP message of type %r", kind)

    async def send(self, command: str, arguments: dict[str, Any] | None = None) -> Pending:
        """Send a request; the caller then waits on the returned ``Pending``."""
        if self.closed.is_set():
            raise trio.ClosedResourceError("the DAP connection is closed")
        self._seq += 1
        seq = self._seq
        message: dict[str, Any] = {"type": "request", "seq": seq, "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        pending = self._pending[seq] = Pending(command, arguments)
        log.debug("DAP request %d %s", seq, command)
        async with self._send_lock:
            await self._stream.send_all(frame(message))
        return pending

    async def wait(self, pending: Pending) -> dict[str, Any]:
        """The response to ``pending`` (``trio.TooSlowError`` after ``self.timeout`` seconds)."""
        try:
            with trio.fail_after(self.timeout):
                await pending.done.wait()
        finally:
            self._pending = {s: p for s, p in self._pending.items() if p is not pending}
        assert pending.response is not None
        return pending.response

    async def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.wait(await self.send(command, arguments))

    async def aclose(self) -> None:
        await self._stream.aclose()


def _lost(seq: int, command: str) -> dict[str, Any]:
    return {"type": "response", "seq": 0, "request_seq": seq, "success": False, "command": command,
            "message": "the connection to debugpy was lost"}
