"""Connection files and socket binding.

A kernel started with ``-f FILE`` reads its ports and key from FILE (the frontend wrote it);
one started without writes its own, mode 0600, in the Jupyter runtime dir, and removes it
on exit. ``ConnectionError_`` carries a one-line message for the CLI to print.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

import attrs
import zmq

from .._core.enums import Channel
from .curve import CurveKeyError, CurveKeys, keys_from, serve_encrypted

log = logging.getLogger("kernel.connection")

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class ConnectionFileError(Exception):
    """A connection file that is missing or unusable, or ports that cannot be bound; the
    message is one line for the command line to print."""


@attrs.frozen
class ConnectionInfo:
    transport: str
    ip: str
    key: bytes
    signature_scheme: str
    ports: dict[str, int]
    kernel_name: str = ""
    curve: CurveKeys | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "ip": self.ip,
            "key": self.key.decode(),
            "signature_scheme": self.signature_scheme,
            "kernel_name": self.kernel_name,
            **self.ports,
            **(self.curve.as_dict() if self.curve else {}),
        }


def read_connection_file(path: Path) -> ConnectionInfo:
    """Parse a connection file; raise ``ConnectionFileError`` with a clear reason."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConnectionFileError(f"connection file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConnectionFileError(f"connection file {path} is not a JSON object")
    transport = raw.get("transport", "tcp")
    if transport not in ("tcp", "ipc"):
        raise ConnectionFileError(f"unsupported transport {transport!r} in {path}")
    scheme = raw.get("signature_scheme", "hmac-sha256")
    if not _usable_scheme(scheme):
        raise ConnectionFileError(f"unsupported signature_scheme {scheme!r} in {path}")
    if "key" not in raw:
        # Only an explicit ``"key": ""`` turns signing off; a file that forgot the key
        # must not silently give an unauthenticated kernel.
        raise ConnectionFileError(f'connection file {path} has no "key" (use "key": "" to disable signing)')
    key = raw["key"]
    if not isinstance(key, str):
        raise ConnectionFileError(f"key in {path} must be a string")
    ports: dict[str, int] = {}
    for name in PORT_NAMES:
        value = raw.get(name, 0)
        if not isinstance(value, int) or not 0 <= value < 65536:
            raise ConnectionFileError(f"{name} in {path} must be a port number, got {value!r}")
        ports[name] = value
    if not key:
        log.warning("connection file %s has an empty key: messages will not be signed", path)
    try:
        curve_keys = keys_from(raw)
    except CurveKeyError as exc:
        raise ConnectionFileError(f"{exc} in {path}") from None
    return ConnectionInfo(
        transport=transport,
        ip=str(raw.get("ip", "127.0.0.1")),
        key=key.encode(),
        signature_scheme=scheme,
        ports=ports,
        kernel_name=str(raw.get("kernel_name", "")),
        curve=curve_keys,
    )


def _usable_scheme(scheme: object) -> bool:
    """True when ``scheme`` is ``hmac-<digest>`` and HMAC with that digest really signs
    (``hmac-shake_128`` is in ``hashlib.algorithms_available`` but cannot sign)."""
    if not isinstance(scheme, str) or not scheme.startswith("hmac-"):
        return False
    try:
        hmac.new(b"probe", b"probe", scheme.removeprefix("hmac-")).hexdigest()
    except (ValueError, TypeError):
        return False
    return True


def new_connection_info(ip: str, transport: str, kernel_name: str) -> ConnectionInfo:
    """Fresh random key, ports chosen when binding (0 means 'pick one')."""
    return ConnectionInfo(
        transport=transport,
        ip=ip if transport == "tcp" else f"{_runtime_dir()}/trio-kernel-{uuid.uuid4().hex[:8]}",
        key=secrets.token_hex(32).encode(),
        signature_scheme="hmac-sha256",
        ports=dict.fromkeys(PORT_NAMES, 0),
        kernel_name=kernel_name,
    )


def bind(sock: zmq.Socket, info: ConnectionInfo, port_name: str) -> int:
    """Bind ``sock`` to its port (a random one when 0) and return the port used."""
    port = info.ports[port_name]
    if info.transport == "ipc":
        if port == 0:
            port = 1
            while Path(f"{info.ip}-{port}").exists():
                port += 1
        sock.bind(f"ipc://{info.ip}-{port}")
        return port
    if port == 0:
        return sock.bind_to_random_port(f"tcp://{info.ip}")
    sock.bind(f"tcp://{info.ip}:{port}")
    return port


def write_connection_file(info: ConnectionInfo, path: Path | None = None) -> Path:
    """Write ``info`` readable by its owner only (0600) and return the path."""
    if path is None:
        path = Path(_runtime_dir()) / f"kernel-{uuid.uuid4()}.json"
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info.as_dict(), f, indent=2)
    os.chmod(path, 0o600)
    return path


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents readable by their owner only (0700);
    directories that already exist are left as they are."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            new.mkdir(mode=0o700)
            os.chmod(new, 0o700)  # mkdir's mode is filtered by the umask


def _runtime_dir() -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    return jupyter_runtime_dir()


SOCKET_TYPES = {
    Channel.SHELL: zmq.ROUTER,
    Channel.CONTROL: zmq.ROUTER,
    Channel.STDIN: zmq.ROUTER,
    Channel.IOPUB: zmq.XPUB,
}
PORT_OF = {
    Channel.SHELL: "shell_port",
    Channel.CONTROL: "control_port",
    Channel.STDIN: "stdin_port",
    Channel.IOPUB: "iopub_port",
}
ROUTER_HWM = 100_000
"""Replies zmq may queue for a peer that does not read them before the kernel waits."""
IOPUB_HWM = 1000
"""Messages zmq may queue for a slow iopub reader before the kernel's writer waits."""
SHELL_RCVHWM = 32
"""Requests zmq may hold, per client, that the kernel has not read yet: when a shell is
full the kernel stops reading (``_control.ioloop``), and this small bound makes zmq push
back on the client instead of holding its burst in the kernel's memory."""


@attrs.frozen
class BoundSockets:
    """A kernel's sockets, bound, and the connection file that names them."""

    context: zmq.Context
    sockets: dict[Channel, zmq.Socket]
    heartbeat: zmq.Socket
    info: ConnectionInfo
    connection_file: Path
    owns_file: bool

    def close(self) -> None:
        """Close the sockets and remove the connection file if the kernel wrote it."""
        for sock in [*self.sockets.values(), self.heartbeat]:
            sock.close(linger=200)
        self.context.term()
        if self.owns_file:
            self.connection_file.unlink(missing_ok=True)


def bind_kernel_sockets(connection_file: str | os.PathLike[str] | None, ip: str = "127.0.0.1",
                        transport: str = "tcp", kernel_name: str = "") -> BoundSockets:
    """Read (or make) the connection info, bind every socket and write our own file.

    Needs only zmq, so ``python -m kernel`` calls it before importing trio and IPython.
    """
    if connection_file is not None:
        info = read_connection_file(Path(connection_file))
    else:
        info = new_connection_info(ip, transport, kernel_name)
    if info.transport == "tcp" and info.ip not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the kernel is reachable beyond this machine", info.ip)
    context = zmq.Context()
    try:
        return _bind_all(context, info, connection_file)
    except zmq.ZMQError as exc:
        context.destroy(linger=0)  # closes whatever was already bound
        raise ConnectionFileError(f"cannot bind the kernel's sockets on {info.ip}: {exc}") from None
    except OSError as exc:
        context.destroy(linger=0)
        raise ConnectionFileError(f"cannot write the connection file: {exc}") from None


def _bind_all(context: zmq.Context, info: ConnectionInfo,
              connection_file: str | os.PathLike[str] | None) -> BoundSockets:
    ports = dict(info.ports)
    sockets: dict[Channel, zmq.Socket] = {}
    for channel, kind in SOCKET_TYPES.items():
        sock = context.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)
        if kind == zmq.ROUTER:
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            # A ROUTER silently drops what it cannot queue for a slow peer; with MANDATORY
            # it says EAGAIN instead and the socket task retries: replies are never lost.
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.SNDHWM, ROUTER_HWM)
        if channel is Channel.SHELL:
            sock.setsockopt(zmq.RCVHWM, SHELL_RCVHWM)
        if kind == zmq.XPUB:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.setsockopt(zmq.XPUB_NODROP, 1)
            sock.setsockopt(zmq.SNDHWM, IOPUB_HWM)
        serve_encrypted(sock, info.curve)
        ports[PORT_OF[channel]] = bind(sock, info, PORT_OF[channel])
        sockets[channel] = sock
    heartbeat = context.socket(zmq.ROUTER)  # echoed by a zmq proxy (see ``heartbeat``)
    heartbeat.setsockopt(zmq.LINGER, 0)
    serve_encrypted(heartbeat, info.curve)
    ports["hb_port"] = bind(heartbeat, info, "hb_port")
    info = attrs.evolve(info, ports=ports)
    path = write_connection_file(info) if connection_file is None else Path(connection_file)
    return BoundSockets(context, sockets, heartbeat, info, path, owns_file=connection_file is None)
