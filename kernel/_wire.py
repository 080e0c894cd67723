"""Wire format: frames <-> typed messages, signed and verified by jupyter_client's Session.

Pure apart from the Session it is given: no sockets, no threads. ``decode`` turns a
multipart frame list into a ``Message`` or raises ``WireError`` with a one-line reason
(bad signature, replayed signature, wrong frame count, invalid JSON, wrong field types),
which the socket task logs before dropping the frames. ``encode`` builds the frames of an
``Outgoing`` message; only the I/O thread calls it, because ``Session.msg`` counts message
ids without a lock.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session, msg_header

from ._enums import Channel

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is an optional speed-up
    orjson = None


class WireError(ValueError):
    """A frame list that is not a valid, correctly signed Jupyter message."""


@attrs.frozen
class Message:
    """One verified request as the kernel sees it."""

    channel: Channel
    idents: list[bytes]
    header: dict[str, Any]
    parent_header: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[memoryview] = attrs.field(factory=list)
    received_at: float = 0.0

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def msg_id(self) -> str:
        return str(self.header["msg_id"])

    @property
    def subshell_id(self) -> str | None:
        value = self.header.get("subshell_id")
        return value if isinstance(value, str) else None


@attrs.frozen
class Outgoing:
    """A message to send, handed by any thread to the owner of a socket."""

    msg_type: str
    content: dict[str, Any]
    parent: dict[str, Any]
    idents: list[bytes] = attrs.field(factory=list)
    metadata: dict[str, Any] | None = None
    buffers: list[bytes | memoryview] | None = None
    header: dict[str, Any] | None = None
    """A header made by the producer, when it must know the msg_id (stdin requests)."""


def _pack_json(obj: Any) -> bytes:
    return json.dumps(obj, default=json_default, ensure_ascii=False, allow_nan=False).encode()


def _pack(obj: Any) -> bytes:
    """Serialise with orjson when present; fall back to json for what orjson refuses."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=json_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            pass
    return _pack_json(obj)


def _unpack(data: bytes) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


PROTOCOL_VERSION = "5.5"


class KernelSession(Session):
    """jupyter_client's Session, stamping our protocol version on every header."""

    def msg_header(self, msg_type: str) -> dict[str, Any]:
        return make_header(self.msg_id, msg_type, self.session)


def make_header(msg_id: str, msg_type: str, session_id: str) -> dict[str, Any]:
    """A message header; callable from any thread when given a unique ``msg_id``."""
    header = msg_header(msg_id, msg_type, "kernel", session_id)
    header["version"] = PROTOCOL_VERSION
    return header


def make_session(key: bytes, signature_scheme: str = "hmac-sha256") -> Session:
    """A Session that signs with ``key`` and packs with orjson when available."""
    session = KernelSession(key=key, signature_scheme=signature_scheme, username="kernel")
    session.pack = _pack
    session.unpack = _unpack
    return session


def decode(session: Session, frames: list[bytes], channel: Channel, now: float) -> Message:
    """Verify and parse one multipart message; raise ``WireError`` on any defect."""
    try:
        idents, rest = session.feed_identities(frames)
    except ValueError:
        raise WireError("no <IDS|MSG> delimiter") from None
    if len(rest) < 5:
        raise WireError(f"{len(rest)} frames after the delimiter, expected at least 5")
    try:
        raw = session.deserialize(rest, content=True)
    except Exception as exc:
        # Any defect: Session's protocol adapter alone raises AttributeError on a
        # non-string ``version`` and IndexError/KeyError on odd v4 content, and an
        # exception escaping here would end the socket task and silence the kernel.
        raise WireError(f"{type(exc).__name__}: {_short(exc)}") from None
    header, parent, metadata, content = (
        raw["header"],
        raw["parent_header"],
        raw["metadata"],
        raw["content"],
    )
    for name, value in (("header", header), ("parent_header", parent),
                        ("metadata", metadata), ("content", content)):
        if not isinstance(value, dict):
            raise WireError(f"{name} is {type(value).__name__}, expected an object")
    if not isinstance(header.get("msg_type"), str) or not isinstance(header.get("msg_id"), str):
        raise WireError("header lacks a string msg_type or msg_id")
    return Message(
        channel=channel,
        idents=list(idents),
        header=header,
        parent_header=parent,
        metadata=metadata,
        content=content,
        buffers=raw["buffers"],
        received_at=now,
    )


def encode(session: Session, out: Outgoing) -> list[bytes]:
    """Build the signed frames of ``out`` (I/O thread only)."""
    msg = session.msg(out.msg_type, content=out.content, parent=out.parent,
                      header=out.header, metadata=out.metadata)
    subshell_id = out.parent.get("subshell_id")
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    frames = session.serialize(msg, ident=out.idents)
    if out.buffers:
        frames.extend(out.buffers)
    return frames


def _short(exc: BaseException, limit: int = 120) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
