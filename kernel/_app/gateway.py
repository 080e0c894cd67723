"""``trio-kernel eg-launch``: the kernel launcher for Jupyter Enterprise Gateway.

Enterprise Gateway (EG) starts a remote kernel through a launcher and waits for it to call
back (EG's "response address" protocol, launcher version 1):

1. EG runs the kernelspec's argv with ``--RemoteProcessProxy.kernel-id``, ``.response-address
   IP:PORT``, ``.public-key`` (EG's RSA public key, DER in base64) and ``.port-range LOW..HIGH``
   (``0..0``: any port), on the target host (SSH, a YARN container, a Kubernetes pod...).
2. The launcher binds the kernel's five ports and a TCP "comm" port inside the range, then
   sends the connection info (ports, key, ``pid``, ``pgid``, ``comm_port``, ``kernel_id``)
   to the response address: JSON, AES-128-ECB with a fresh key and PKCS#7 padding, the AES
   key encrypted with EG's RSA key (PKCS#1 v1.5), both base64 in a JSON envelope
   ``{"version": 1, "key": ..., "conn_info": ...}`` that is itself base64-encoded. The
   ciphers are EG's choice, not ours.
3. EG connects to the kernel's ports. Afterwards it opens short TCP connections to the comm
   port with ``{"signum": N}`` (0 is EG's liveness poll; 2 interrupts when the kernelspec
   says ``interrupt_mode: signal``; 15 ends the kernel) or ``{"shutdown": 1}``. The
   launcher carries out 2 as the kernel's own interrupt rather than as a signal.

Unlike EG's own launcher (a second process relays signals), one process does it all: the
sockets are bound before trio and IPython are imported, the connection info goes out,
and the kernel runs with one extra thread that owns the comm port (started and joined by a
trio task beside the kernel). Pure parts (arguments, ports, payload, requests) are plain
functions; ``main`` runs on the main thread.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._core.enums import RunMode
from .._transport.connection import (
    PORT_NAMES,
    BoundSockets,
    ConnectionFileError,
    bind_kernel_sockets,
    new_connection_info,
    write_connection_file,
)

log = logging.getLogger("kernel.gateway")

LAUNCHER_VERSION = 1
ENV_DEFAULTS = {
    "kernel_id": ("KERNEL_ID",),
    "response_address": ("RESPONSE_ADDRESS", "EG_RESPONSE_ADDRESS"),
    "public_key": ("PUBLIC_KEY", "EG_PUBLIC_KEY"),
    "port_range": ("PORT_RANGE", "EG_PORT_RANGE"),
}
"""Environment variables EG's container images use for the same values (Kubernetes, Docker)."""
BIND_ATTEMPTS = int(os.environ.get("EG_MAX_PORT_RANGE_RETRIES", "5")) + 1
MIN_RANGE_SIZE = int(os.environ.get("EG_MIN_PORT_RANGE_SIZE", "1000"))
REQUEST_LIMIT = 64 * 1024
"""Largest request accepted on the comm port (EG's are a few bytes)."""


class LaunchError(Exception):
    """A launch that cannot go ahead; the message is one line for the command line."""


@attrs.frozen
class LaunchArgs:
    kernel_id: str
    response_address: tuple[str, int]
    public_key: str
    port_range: tuple[int, int]
    ip: str
    default_mode: RunMode
    log_level: str
    no_history: bool


@attrs.frozen
class GatewayRequest:
    """One request from EG on the comm port."""

    signum: int | None = None
    shutdown: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-kernel eg-launch",
        description="Start a trio kernel for Jupyter Enterprise Gateway and report back to it.",
    )
    for name, meta in (("kernel-id", "ID"), ("response-address", "IP:PORT"), ("public-key", "KEY"),
                       ("port-range", "LOW..HIGH"), ("spark-context-initialization-mode", "MODE"),
                       ("cluster-type", "TYPE")):
        dest = name.replace("-", "_")
        # EG's kernelspecs use the RemoteProcessProxy-prefixed spelling, its container
        # bootstrap the bare one; both are accepted, as by EG's own launchers.
        parser.add_argument(f"--{name}", f"--RemoteProcessProxy.{name}", dest=dest, metavar=meta)
    parser.add_argument("--ip", default="0.0.0.0",
                        help="address the kernel binds (default 0.0.0.0: EG connects from another host)")
    parser.add_argument("--default-mode", choices=[m.value for m in RunMode], default="queue")
    parser.add_argument("--log-level", default=os.environ.get("TRIO_KERNEL_LOG_LEVEL", "WARNING"))
    parser.add_argument("--no-history", action="store_true", help="keep history in memory only")
    return parser


def parse_args(argv: Sequence[str], env: dict[str, str]) -> LaunchArgs:
    """Command line first, then EG's environment variables; raises ``LaunchError``."""
    ns = build_parser().parse_args(list(argv))
    values: dict[str, str | None] = {}
    for dest, names in ENV_DEFAULTS.items():
        values[dest] = getattr(ns, dest) or next((env[n] for n in names if env.get(n)), None)
    for dest in ("kernel_id", "response_address", "public_key"):
        if not values[dest]:
            raise LaunchError(f"--{dest.replace('_', '-')} is required (EG passes it)")
    if ns.spark_context_initialization_mode not in (None, "none"):
        log.warning("spark context initialization %r is not supported; starting without Spark",
                    ns.spark_context_initialization_mode)
    return LaunchArgs(
        kernel_id=str(values["kernel_id"]),
        response_address=parse_address(str(values["response_address"])),
        public_key=str(values["public_key"]),
        port_range=parse_port_range(values["port_range"] or "0..0"),
        ip=ns.ip,
        default_mode=RunMode(ns.default_mode),
        log_level=ns.log_level,
        no_history=ns.no_history or env.get("TRIO_KERNEL_NO_HISTORY") == "1",
    )


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LaunchError(f"response address must be IP:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def parse_port_range(text: str, min_size: int = MIN_RANGE_SIZE) -> tuple[int, int]:
    """``LOW..HIGH`` as a pair; ``0..0`` means any port. EG insists on a minimum size."""
    low, sep, high = text.partition("..")
    if not sep or not low.isdigit() or not high.isdigit():
        raise LaunchError(f"port range must be LOW..HIGH, got {text!r}")
    lower, upper = int(low), int(high)
    if (lower, upper) == (0, 0):
        return 0, 0
    if not 0 < lower <= upper < 65536 or upper - lower < min_size:
        raise LaunchError(f"port range {text!r} must lie in 1..65535 and span at least {min_size} ports")
    return lower, upper


def candidate_ports(port_range: tuple[int, int], count: int, rng: random.Random) -> list[int]:
    """Distinct ports to try in the range (zeros, i.e. 'any', for ``0..0``)."""
    lower, upper = port_range
    if (lower, upper) == (0, 0):
        return [0] * count
    return rng.sample(range(lower, upper + 1), count)


def encrypt_payload(info: dict[str, Any], public_key: str, aes_key: bytes | None = None) -> bytes:
    """The version-1 envelope EG's ResponseManager decodes (see the module docstring)."""
    from cryptography.hazmat.primitives import padding, serialization
    from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    aes_key = os.urandom(16) if aes_key is None else aes_key
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(info).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    sealed = encryptor.update(plain) + encryptor.finalize()
    try:
        rsa_key = serialization.load_der_public_key(base64.b64decode(public_key))
    except ValueError as exc:
        raise LaunchError(f"the public key is not a base64 DER RSA key: {exc}") from None
    if not isinstance(rsa_key, RSAPublicKey):
        raise LaunchError("the public key is not an RSA key")
    wrapped_key = rsa_key.encrypt(aes_key, rsa_padding.PKCS1v15())
    envelope = {
        "version": LAUNCHER_VERSION,
        "key": base64.b64encode(wrapped_key).decode(),
        "conn_info": base64.b64encode(sealed).decode(),
    }
    return base64.b64encode(json.dumps(envelope).encode())


def parse_request(data: bytes) -> GatewayRequest | None:
    """A comm-port request, or ``None`` when it is not one EG sends."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    signum = raw.get("signum")
    if signum is not None and (isinstance(signum, bool) or not isinstance(signum, int)
                               or not 0 <= signum < signal.NSIG):
        return None
    return GatewayRequest(signum=signum, shutdown=bool(raw.get("shutdown")))


def bind_in_range(args: LaunchArgs, runtime_dir: Path, rng: random.Random) -> BoundSockets:
    """Bind the kernel's sockets on ports of the range (retrying taken ones) and keep the
    connection file (0600) in ``runtime_dir`` for local tools; the caller removes it."""
    path = runtime_dir / f"kernel-{args.kernel_id}.json"
    last_error = ""
    for _ in range(BIND_ATTEMPTS):
        info = new_connection_info(args.ip, "tcp", "")
        info = attrs.evolve(info, ports=dict(zip(PORT_NAMES, candidate_ports(args.port_range, 5, rng),
                                                 strict=True)))
        write_connection_file(info, path)
        try:
            bound = bind_kernel_sockets(path)
        except ConnectionFileError as exc:
            last_error = str(exc)
            continue
        write_connection_file(bound.info, path)  # the ports actually bound
        return bound
    path.unlink(missing_ok=True)
    raise LaunchError(f"no free ports in {args.port_range[0]}..{args.port_range[1]}: {last_error}")


def listen_in_range(args: LaunchArgs, rng: random.Random) -> socket.socket:
    """The comm port: a listening TCP socket in the range."""
    for port in (candidate_ports(args.port_range, 1, rng)[0] for _ in range(BIND_ATTEMPTS)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((args.ip, port))
        except OSError:
            sock.close()
            continue
        sock.listen(8)
        return sock
    raise LaunchError(f"no free comm port in {args.port_range[0]}..{args.port_range[1]}")


def connection_payload(bound: BoundSockets, comm_port: int, kernel_id: str) -> dict[str, Any]:
    pid = os.getpid()
    return {**bound.info.as_dict(), "pid": pid, "pgid": os.getpgid(pid), "comm_port": comm_port,
            "kernel_id": kernel_id}


def report_to_gateway(address: tuple[str, int], payload: bytes, timeout: float = 30.0) -> None:
    """Send the sealed connection info; EG reads until we close the connection."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(payload)
    except OSError as exc:
        raise LaunchError(f"cannot reach Enterprise Gateway at {address[0]}:{address[1]}: {exc}") from None


def serve_gateway_requests(sock: socket.socket, stop: threading.Event,
                           on_shutdown: Callable[[], None], poll: float = 0.1) -> None:
    """Answer EG on the comm port until ``stop`` is set or EG says shutdown (own thread).

    SIGINT interrupts the running cells as an ``interrupt_request`` does; other signals go to
    the main thread (SIGTERM: the kernel's clean exit); 0 (EG's poll) does nothing:
    accepting the connection is the proof of life EG looks for.
    """
    from .._control.sigint import interrupt_kernels  # trio: imported once the sockets are bound

    main_thread = threading.main_thread().ident
    assert main_thread is not None
    sock.settimeout(poll)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        with conn:
            request = parse_request(_read_request(conn))
        if request is None:
            log.warning("ignored a malformed request on the gateway comm port")
            continue
        log.debug("gateway request: %s", request)
        if request.signum == signal.SIGINT:
            # The kernel's own interrupt (cancel, then escalate with retries), as for
            # interrupt_request: a lone SIGINT raised from here was sometimes lost (1 in ~6
            # runs of test_launcher_reports_serves_and_obeys_the_gateway).
            interrupt_kernels()
        elif request.signum:
            # To the main thread, not the process: Linux may hand a process-directed signal
            # sent from this thread to this thread rather than to the one that handles it.
            signal.pthread_kill(main_thread, request.signum)
        if request.shutdown:
            on_shutdown()
            return


def _read_request(conn: socket.socket, timeout: float = 2.0) -> bytes:
    conn.settimeout(timeout)
    data = b""
    try:
        while len(data) < REQUEST_LIMIT:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass  # EG sends a few bytes and closes; a stalled peer gets what it sent so far
    return data


def main(argv: Sequence[str]) -> int:
    """``trio-kernel eg-launch ...`` or ``trio-kernel eg-kernelspec ...`` (``argv[0]``)."""
    if argv[0] == "eg-kernelspec":
        from .kernelspec import gateway_kernelspec_main

        return gateway_kernelspec_main(argv[1:])
    return _launch(argv[1:])


def _launch(argv: Sequence[str]) -> int:
    """Bind, report to EG, run the kernel until it ends."""
    try:
        args = parse_args(argv, dict(os.environ))
    except LaunchError as exc:
        print(f"trio-kernel eg-launch: {exc}", file=sys.stderr)
        return 2
    from .logs import configure

    configure(args.log_level)  # the kernel logger only: the root logger is the user's
    from jupyter_core.paths import jupyter_runtime_dir

    rng = random.SystemRandom()
    runtime_dir = Path(jupyter_runtime_dir())
    runtime_dir.mkdir(parents=True, exist_ok=True)
    bound: BoundSockets | None = None
    comm: socket.socket | None = None
    try:
        bound = bind_in_range(args, runtime_dir, rng)
        comm = listen_in_range(args, rng)
        payload = connection_payload(bound, comm.getsockname()[1], args.kernel_id)
        report_to_gateway(args.response_address, encrypt_payload(payload, args.public_key))
    except LaunchError as exc:
        print(f"trio-kernel eg-launch: {exc}", file=sys.stderr)
        if bound is not None:
            bound.close()
            bound.connection_file.unlink(missing_ok=True)
        if comm is not None:
            comm.close()
        return 2
    try:
        return _run(bound, comm, args)
    finally:
        comm.close()
        bound.connection_file.unlink(missing_ok=True)


def _run(bound: BoundSockets, comm: socket.socket, args: LaunchArgs) -> int:
    """The kernel as ``trio-kernel -f`` runs it, with the comm-port owner beside it."""
    from .cli import run_kernel

    return run_kernel(bound, args.default_mode, ":memory:" if args.no_history else None, [],
                      beside=functools.partial(_own_comm_listener, comm))


async def _own_comm_listener(sock: socket.socket, scope: Any, *, task_status: Any) -> None:
    """Run the comm-port thread; on cancellation tell it to stop, then wait for it."""
    import trio

    token = trio.lowlevel.current_trio_token()
    stop = threading.Event()

    def on_shutdown() -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the kernel may have ended already
            trio.from_thread.run_sync(scope.cancel, trio_token=token)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(trio.to_thread.run_sync, serve_gateway_requests, sock, stop,
                                             on_shutdown, limiter=trio.CapacityLimiter(1)))
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            stop.set()
