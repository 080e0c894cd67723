"""Wire format: frames <-> typed messages, signed and verified with HMAC.

Pure apart from the ``WireSession`` it is given (a key and a replay history): no sockets,
no threads. ``decode`` turns a multipart frame list into a ``Message`` or raises
``WireError`` with a one-line reason (unsigned, bad or replayed signature, wrong frame
count, invalid JSON, wrong field types), which the socket task logs before dropping the
frames. ``encode`` builds the signed frames of an ``Outgoing`` message.

This follows the framing and signing of jupyter_client's ``Session`` but does not use it:
importing ``jupyter_client`` pulls in its asyncio clients and managers, 80-90 ms of the
kernel's ~300 ms start-up (measured, see ``benchmarks/README.md``), and ``Session`` parses
every header date we only echo back. Signatures are compared in constant time
(``hmac.compare_digest``) and a signature is remembered only once it verified.
"""

from __future__ import annotations

import base64
import collections
import datetime
import hashlib
import hmac
import itertools
import json
import numbers
import os
import re
import uuid
from typing import Any, cast

import attrs

from .._core.enums import Channel

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is an optional speed-up
    orjson = None  # type: ignore[assignment]  # absent: the stdlib json is used instead

DELIMITER = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.5"


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
    content: dict[str, Any] | bytes
    """A dict, or its JSON already packed by ``freeze``."""
    parent: dict[str, Any]
    idents: list[bytes] = attrs.field(factory=list)
    metadata: dict[str, Any] | bytes | None = None
    buffers: list[bytes | memoryview] | None = None
    header: dict[str, Any] | None = None
    """A header made by the producer, when it must know the msg_id (stdin requests)."""


def _json_default(obj: Any) -> Any:
    """What JSON cannot say directly: bytes as base64 (images), dates, numbers, sets."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def pack(obj: Any) -> bytes:
    """Serialise with orjson when present; fall back to json for what orjson refuses.

    Text with lone surrogates (``os.fsdecode`` of a non-UTF-8 name, an exception message
    built from one) cannot be UTF-8: each such code point becomes U+FFFD, so the output is
    shown with a replacement character instead of being lost. (ipykernel sends the raw
    bytes, invalid UTF-8 that clients decode to the same U+FFFD.)
    """
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            pass
    text = json.dumps(obj, default=_json_default, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode()


def pack_anyway(obj: Any) -> bytes:
    """``pack``, or, for content it cannot serialise, a stand-in that says why.

    Used for what the kernel itself sends (replies, status): a reply must never be lost
    because a value in it (a user expression, a payload) could not be encoded. Values JSON
    cannot say become their ``repr``; a structure that still fails (a reference cycle)
    becomes an error description.
    """
    try:
        return pack(obj)
    except (TypeError, ValueError):
        pass
    try:
        text = json.dumps(obj, default=_repr_of, ensure_ascii=False)
        return _LONE_SURROGATE.sub("\ufffd", text).encode()
    except (TypeError, ValueError) as exc:
        return pack({"status": "error", "ename": "EncodeError",
                     "evalue": f"the kernel could not encode this message: {_short(exc)}", "traceback": []})


def _repr_of(obj: Any) -> Any:
    try:
        return _json_default(obj)
    except TypeError:
        return repr(obj)


def unpack(data: bytes) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


class WireSession:
    """The signing key, this kernel's session id and the signatures already seen."""

    def __init__(self, key: bytes, signature_scheme: str = "hmac-sha256", history_size: int = 1 << 16) -> None:
        algorithm = signature_scheme.removeprefix("hmac-")
        if not signature_scheme.startswith("hmac-") or algorithm not in hashlib.algorithms_available:
            raise ValueError(f"unsupported signature scheme {signature_scheme!r}")
        self._mac = hmac.new(key, digestmod=algorithm) if key else None
        self.session = str(uuid.uuid4())
        self._seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._history_size = history_size
        self._msg_ids = itertools.count()
        self._msg_id_prefix = f"{self.session}_{os.getpid()}_"

    def new_msg_id(self) -> str:
        """A msg_id unique to this kernel, as jupyter_client's ``Session`` makes them
        (session, process, counter; any thread): a uuid4 costs a urandom syscall, and so a
        GIL hand-off, for every message sent."""
        return f"{self._msg_id_prefix}{next(self._msg_ids)}"

    def sign(self, parts: list[bytes]) -> bytes:
        """The hex HMAC of the four JSON parts (empty when there is no key)."""
        if self._mac is None:
            return b""
        mac = self._mac.copy()
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def verify(self, signature: bytes, parts: list[bytes]) -> None:
        """Raise ``WireError`` unless ``signature`` is new and right for ``parts``."""
        if self._mac is None:
            return
        if not signature:
            raise WireError("Unsigned Message")
        if signature in self._seen:
            raise WireError("Duplicate Signature: a replayed message")
        if not hmac.compare_digest(signature, self.sign(parts)):
            raise WireError("Invalid Signature")
        self._seen[signature] = None
        if len(self._seen) > self._history_size:
            self._seen.popitem(last=False)


def make_session(key: bytes, signature_scheme: str = "hmac-sha256") -> WireSession:
    return WireSession(key, signature_scheme)


def make_header(msg_id: str, msg_type: str, session_id: str) -> dict[str, Any]:
    """A message header; callable from any thread when given a unique ``msg_id``."""
    now = datetime.datetime.now(datetime.UTC)
    return {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "username": "kernel",
        "session": session_id,
        # isoformat is twice as fast as strftime and gives the same text once "Z" is put
        # for the offset.
        "date": now.isoformat(timespec="microseconds")[:-6] + "Z",
        "version": PROTOCOL_VERSION,
    }


def decode(session: WireSession, frames: list[bytes], channel: Channel, now: float) -> Message:
    """Verify and parse one multipart message; raise ``WireError`` on any defect."""
    try:
        split = frames.index(DELIMITER)
    except ValueError:
        raise WireError("no <IDS|MSG> delimiter") from None
    rest = frames[split + 1:]
    if len(rest) < 5:
        raise WireError(f"{len(rest)} frames after the delimiter, expected at least 5")
    parts = [bytes(part) for part in rest[1:5]]
    session.verify(bytes(rest[0]), parts)
    parsed = []
    for name, part in zip(("header", "parent_header", "metadata", "content"), parts, strict=True):
        try:
            value = unpack(part)
        except ValueError as exc:
            raise WireError(f"{name} is not valid JSON: {_short(exc)}") from None
        if not isinstance(value, dict):
            raise WireError(f"{name} is {type(value).__name__}, expected an object")
        parsed.append(value)
    header, parent, metadata, content = parsed
    if not isinstance(header.get("msg_type"), str) or not isinstance(header.get("msg_id"), str):
        raise WireError("header lacks a string msg_type or msg_id")
    return Message(
        channel=channel,
        idents=list(frames[:split]),
        header=header,
        parent_header=parent,
        metadata=metadata,
        content=content,
        buffers=[memoryview(b) for b in rest[5:]],
        received_at=now,
    )


def freeze(out: Outgoing) -> Outgoing:
    """Serialise the parts that may hold user objects, now, on the producer's thread.

    A message is sent later, from the I/O thread: without this, a dict a cell changes
    after ``display(d)`` would go out changed, and an unserialisable value would fail far
    from the cell that passed it instead of raising there.
    """
    content, metadata, buffers = out.content, out.metadata, out.buffers
    if isinstance(content, bytes) and not buffers:
        return out
    # The constructor, not ``attrs.evolve``: this runs for every message a cell sends,
    # and evolve's field introspection cost as much as the JSON of a status message.
    return Outgoing(
        out.msg_type,
        content if isinstance(content, bytes) else pack(content),
        out.parent,
        out.idents,
        metadata if isinstance(metadata, bytes) else pack(metadata or {}),
        [bytes(b) for b in buffers] if buffers else None,
        out.header,
    )


def encode(session: WireSession, out: Outgoing) -> list[bytes]:
    """Build the signed frames of ``out``."""
    header = out.header or make_header(session.new_msg_id(), out.msg_type, session.session)
    subshell_id = out.parent.get("subshell_id")
    if subshell_id is not None:
        header = {**header, "subshell_id": subshell_id}
    metadata = out.metadata if isinstance(out.metadata, bytes) else pack_anyway(out.metadata or {})
    content = out.content if isinstance(out.content, bytes) else pack_anyway(out.content)
    parts = [pack_anyway(header), pack_anyway(out.parent), metadata, content]
    frames = [*out.idents, DELIMITER, session.sign(parts), *parts]
    if out.buffers:
        frames.extend(cast("list[bytes]", out.buffers))  # memoryviews go to zmq uncopied
    return frames


def _short(exc: BaseException, limit: int = 120) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
