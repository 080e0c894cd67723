"""The Debug Adapter Protocol on the wire, and DAP message construction (pure, no I/O).

DAP frames are ``Content-Length: N\\r\\n\\r\\n`` followed by N bytes of UTF-8 JSON. ``DAPBuffer``
is fed whatever bytes a socket returned and hands back the complete messages, h11-style: the
caller owns the socket, this module owns the parsing.
"""

from __future__ import annotations

import json
from typing import Any

_SEPARATOR = b"\r\n\r\n"
MAX_HEADER = 4096


class DAPError(Exception):
    """The peer sent something that is not DAP framing."""


def frame(message: dict[str, Any]) -> bytes:
    """One DAP message as bytes to send."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class DAPBuffer:
    """Accumulates received bytes and splits them into DAP messages."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._length: int | None = None

    def feed(self, data: bytes | bytearray) -> list[dict[str, Any]]:
        """Add ``data``; return every message now complete, in order."""
        self._data += data
        messages: list[dict[str, Any]] = []
        while True:
            if self._length is None:
                end = self._data.find(_SEPARATOR)
                if end < 0:
                    if len(self._data) > MAX_HEADER:
                        raise DAPError("DAP header too long")
                    return messages
                self._length = _content_length(bytes(self._data[:end]))
                del self._data[:end + len(_SEPARATOR)]
            if len(self._data) < self._length:
                return messages
            body = bytes(self._data[:self._length])
            del self._data[:self._length]
            self._length = None
            try:
                message = json.loads(body)
            except ValueError as exc:
                raise DAPError(f"DAP body is not JSON: {exc}") from exc
            if not isinstance(message, dict):
                raise DAPError("DAP message is not an object")
            messages.append(message)


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError as exc:
                raise DAPError(f"bad Content-Length {value!r}") from exc
            if length < 0:
                raise DAPError("negative Content-Length")
            return length
    raise DAPError("DAP header without Content-Length")


def response(request: dict[str, Any], success: bool = True, body: dict[str, Any] | None = None,
             message: str | None = None) -> dict[str, Any]:
    """A DAP response to ``request`` (a ``debug_reply`` content)."""
    reply: dict[str, Any] = {
        "type": "response",
        "seq": 0,
        "request_seq": _int(request.get("seq")),
        "success": success,
        "command": str(request.get("command", "")),
    }
    if body is not None:
        reply["body"] = body
    if message is not None:
        reply["message"] = message
    return reply


def failure(request: dict[str, Any], message: str) -> dict[str, Any]:
    return response(request, False, message=message)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
