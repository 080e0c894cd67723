"""CurveZMQ transport encryption, side by side with ipykernel 7.

jupyter_client provisions the keys (``transport_encryption``) for kernels whose kernelspec
lists ``curve`` in ``metadata.supported_encryption``; the kernel must then talk only to
clients that know its public key, on every socket, and what crosses the wire must be
ciphertext. Handshake outcomes are read from zmq's socket monitor, not inferred from time.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.session import Session
from zmq.utils.monitor import recv_monitor_message

from kernel._app.kernelspec import spec_dict
from kernel._core.enums import RunMode
from kernel._transport.connection import ConnectionFileError, read_connection_file
from tests.harness import TIMEOUT, Frontend, running_kernel, stdout_of

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without Curve")

KERNELS = ["trio", "python3"]
SILENCE = 1.0
"""How long a client that failed the handshake waits to show that no reply comes."""


@pytest.fixture(scope="module", params=KERNELS)
def encrypted(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    with running_kernel(request.param, transport_encryption="required") as frontend:
        yield frontend


def test_kernelspec_advertises_curve() -> None:
    assert spec_dict("x", {}, RunMode.QUEUE)["metadata"]["supported_encryption"] == ["curve"]


def test_manager_provisions_keys_and_every_channel_works(encrypted: Frontend) -> None:
    info = json.loads(Path(encrypted.km.connection_file).read_text())
    assert zmq.curve_public(info["curve_secretkey"].encode()) == info["curve_publickey"].encode()
    reply, outputs = encrypted.execute("print('over curve')")  # shell + iopub
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == "over curve\n"
    assert encrypted.control("kernel_info_request")["content"]["status"] == "ok"  # control
    assert _heartbeat_echo(encrypted, info["curve_publickey"].encode()) == [b"ping"]


@pytest.mark.parametrize("server_key", ["wrong", "none"])
def test_client_without_the_server_key_gets_nothing(encrypted: Frontend, server_key: str) -> None:
    info = json.loads(Path(encrypted.km.connection_file).read_text())
    wrong = zmq.curve_keypair()[0] if server_key == "wrong" else None
    session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
    with _clients() as client:
        for channel, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("hb", zmq.REQ),
                              ("iopub", zmq.SUB)):
            sock, events = client(kind, info, channel, wrong)
            assert _handshake(events).startswith("HANDSHAKE_FAILED"), channel
            # After a failed handshake the socket may have no peer at all, and a send would
            # wait for one: send without blocking, and "nothing to send to" counts as silence.
            with contextlib.suppress(zmq.Again):
                if kind == zmq.SUB:
                    sock.setsockopt(zmq.SUBSCRIBE, b"")
                    encrypted.execute("print('not for you')")
                elif kind == zmq.REQ:
                    sock.send(b"ping", zmq.NOBLOCK)
                else:
                    session.send(sock, "kernel_info_request", {})
            assert not sock.poll(int(SILENCE * 1000)), f"{channel} answered a client without the key"
        # The kernel still serves the client that has the key.
        assert encrypted.execute("1 + 1")[0]["content"]["status"] == "ok"


@pytest.mark.parametrize("encrypt", [True, False], ids=["curve", "plain"])
def test_wire_carries_ciphertext(encrypt: bool) -> None:
    """A relay between client and kernel records the shell bytes: the code is invisible
    under Curve and readable without (which shows that the relay would see it)."""
    marker = "secret_marker_4711"
    policy = "required" if encrypt else "disabled"
    with running_kernel("trio", transport_encryption=policy) as frontend:
        info = json.loads(Path(frontend.km.connection_file).read_text())
        session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        with _clients() as client:
            with _relay(info["ip"], info["shell_port"]) as (port, seen):
                sock, events = client(zmq.DEALER, {**info, "shell_port": port}, "shell",
                                       info["curve_publickey"].encode() if encrypt else None)
                assert _handshake(events) == "HANDSHAKE_SUCCEEDED"
                session.send(sock, "execute_request", {"code": f"{marker} = 1", "silent": False})
                assert sock.poll(int(TIMEOUT * 1000)), "no execute_reply through the relay"
                reply = session.recv(sock)[1]
                assert reply is not None and reply["content"]["status"] == "ok"
            assert (marker.encode() in bytes(seen)) is not encrypt


@pytest.mark.parametrize("change, reason", [
    ({"curve_secretkey": None}, "curve_publickey given without curve_secretkey"),
    ({"curve_publickey": "x" * 39}, "must be a 40-character Z85 string"),
    ({"curve_publickey": zmq.curve_keypair()[0].decode()}, "does not belong to curve_secretkey"),
])
def test_unusable_keys_are_refused(tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    public, secret = zmq.curve_keypair()
    raw = {"key": "k", "curve_publickey": public.decode(), "curve_secretkey": secret.decode(), **change}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConnectionFileError, match=reason):
        read_connection_file(path)


def test_keys_round_trip_and_stay_out_of_repr(tmp_path: Path) -> None:
    public, secret = zmq.curve_keypair()
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"key": "k", "curve_publickey": public.decode(), "curve_secretkey": secret.decode()}))
    info = read_connection_file(path)
    assert info.as_dict()["curve_secretkey"] == secret.decode()
    assert secret.decode() not in repr(info)


@contextmanager
def _clients() -> Iterator[Callable[[int, dict[str, Any], str, bytes | None], tuple[zmq.Socket, zmq.Socket]]]:
    """A factory of client sockets (and their monitors), all closed on exit."""
    ctx = zmq.Context()
    made: list[tuple[zmq.Socket, zmq.Socket]] = []

    def client(kind: int, info: dict[str, Any], channel: str,
               server_key: bytes | None) -> tuple[zmq.Socket, zmq.Socket]:
        sock = ctx.socket(kind)
        sock.linger = 0
        sock.sndtimeo = 0  # Session.send has no flags argument
        events = sock.get_monitor_socket()
        made.append((sock, events))
        if server_key is not None:
            sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
            sock.curve_serverkey = server_key
        sock.connect(f"tcp://{info['ip']}:{info[f'{channel}_port']}")
        return sock, events

    try:
        yield client
    finally:
        for sock, events in made:
            sock.disable_monitor()  # else zmq's own end of the monitor pipe keeps ctx alive
            events.close(linger=0)
            sock.close(linger=0)
        ctx.term()


def _handshake(events: zmq.Socket) -> str:
    """The first handshake event the monitor reports (success or one of the failures)."""
    while events.poll(int(TIMEOUT * 1000)):
        name = zmq.Event(recv_monitor_message(events)["event"]).name
        if name.startswith("HANDSHAKE"):
            return name
    raise TimeoutError("no handshake event")


def _heartbeat_echo(frontend: Frontend, server_key: bytes) -> list[bytes]:
    info = json.loads(Path(frontend.km.connection_file).read_text())
    with _clients() as client:
        sock, events = client(zmq.REQ, info, "hb", server_key)
        assert _handshake(events) == "HANDSHAKE_SUCCEEDED"
        sock.send(b"ping")
        assert sock.poll(int(TIMEOUT * 1000))
        return sock.recv_multipart()


@contextmanager
def _relay(host: str, port: int) -> Iterator[tuple[int, bytearray]]:
    """A TCP relay to ``host:port`` on a thread of its own; yields its port and the bytes
    seen going to the kernel. The thread is joined on exit."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = bytearray()
    stop = threading.Event()

    def pump() -> None:
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is listener:
                    client, _ = listener.accept()
                    upstream = socket.create_connection((host, port))
                    peers[client], peers[upstream] = upstream, client
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(upstream, selectors.EVENT_READ)
                    continue
                data = sock.recv(65536)
                if sock not in peers:
                    continue
                if not data:
                    for end in (sock, peers.pop(sock)):
                        peers.pop(end, None)
                        sel.unregister(end)
                        end.close()
                    continue
                if peers[sock].getpeername()[1] == port:
                    seen.extend(data)
                peers[sock].sendall(data)
        for sock in peers:
            sock.close()
        sel.close()

    thread = threading.Thread(target=pump, name="relay")
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        stop.set()
        thread.join(TIMEOUT)
        listener.close()
