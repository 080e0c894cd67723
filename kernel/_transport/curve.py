"""CurveZMQ transport encryption, as jupyter_client ≥ 8.7 provisions it.

A kernel manager with ``transport_encryption`` set to ``auto`` or ``required`` generates a
Curve keypair for a kernel whose kernelspec lists ``"curve"`` in
``metadata.supported_encryption`` and writes it into the connection file as
``curve_publickey``/``curve_secretkey`` (Z85 text). The kernel then serves every socket
(shell, control, stdin, iopub, heartbeat) as a Curve server with that keypair; clients
connect with the public key as ``curve_serverkey``. A client that does not know the
server's public key fails the handshake and never exchanges a message with the kernel.
Connection files without the two fields give an unencrypted kernel, as before.

Pure key checks plus one function that configures a socket before it is bound; runs on
whichever thread binds the sockets (before trio starts, for ``python -m kernel``).
"""

from __future__ import annotations

from typing import Any

import attrs
import zmq

FIELDS = ("curve_publickey", "curve_secretkey")
Z85_KEY_LENGTH = 40
"""A 32-byte Curve key in Z85 text."""


class CurveKeyError(ValueError):
    """Curve keys in a connection file that cannot be used; the message is one line."""


@attrs.frozen(repr=False)
class CurveKeys:
    """The kernel's own (server) keypair, Z85-encoded. ``repr`` hides the secret."""

    public: bytes
    secret: bytes

    def __repr__(self) -> str:
        return f"CurveKeys(public={self.public.decode()!r}, secret=<hidden>)"

    def as_dict(self) -> dict[str, str]:
        return {"curve_publickey": self.public.decode(), "curve_secretkey": self.secret.decode()}


def keys_from(raw: dict[str, Any]) -> CurveKeys | None:
    """The keypair named in a parsed connection file, ``None`` when it names none.

    Refuses half a keypair, malformed keys, a public key that does not belong to the secret
    key, and keys given to a libzmq built without Curve: each of these would otherwise give
    a kernel that nobody can reach, or one that silently runs unencrypted.
    """
    present = [name for name in FIELDS if raw.get(name) is not None]
    if not present:
        return None
    if len(present) == 1:
        raise CurveKeyError(f"{present[0]} given without {_other(present[0])}")
    public, secret = raw["curve_publickey"], raw["curve_secretkey"]
    for name, value in (("curve_publickey", public), ("curve_secretkey", secret)):
        if not isinstance(value, str) or len(value) != Z85_KEY_LENGTH or not value.isascii():
            raise CurveKeyError(f"{name} must be a {Z85_KEY_LENGTH}-character Z85 string")
    if not zmq.has("curve"):
        raise CurveKeyError("the connection file asks for CurveZMQ encryption, but this libzmq has no Curve support")
    try:
        derived = zmq.curve_public(secret.encode())
    except (zmq.ZMQError, ValueError) as exc:
        raise CurveKeyError(f"curve_secretkey is not a valid Z85 key: {exc}") from None
    if derived != public.encode():
        raise CurveKeyError("curve_publickey does not belong to curve_secretkey")
    return CurveKeys(public.encode(), secret.encode())


def serve_encrypted(sock: zmq.Socket, keys: CurveKeys | None) -> None:
    """Make ``sock`` a Curve server with ``keys`` (a no-op for ``None``); call before bind."""
    if keys is None:
        return
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def supported() -> bool:
    """Whether this pyzmq/libzmq can encrypt (decides what the kernelspec advertises)."""
    return bool(zmq.has("curve"))


def _other(name: str) -> str:
    return FIELDS[1] if name == FIELDS[0] else FIELDS[0]
