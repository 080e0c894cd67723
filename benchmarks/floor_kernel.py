"""The floor of a round trip: a 'kernel' that only answers, in one Python thread.

It binds the five sockets of a connection file and answers ``kernel_info_request`` and
``execute_request`` the way a kernel does (busy, ``execute_input``, the reply, idle),
signing with jupyter_client's ``Session``, without running any code. What a client
measures against it is the cost of the client, zmq and four signed messages: no kernel
written in Python that answers with those messages can be faster. ``bench.py --kernels
trio,floor`` puts its round trip and throughput beside ours (its other scenarios fail:
it runs no code).

    .venv/bin/python benchmarks/floor_kernel.py --install   # kernelspec "floor" in .venv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.session import Session


def serve(connection_file: str) -> None:
    """Answer until a shutdown_request (the process is killed otherwise)."""
    cfg = json.loads(Path(connection_file).read_text())
    context = zmq.Context()

    def bound(kind: int, port: str) -> zmq.Socket[bytes]:
        sock = context.socket(kind)
        sock.bind(f"{cfg['transport']}://{cfg['ip']}:{cfg[port]}")
        return sock

    shell, control = bound(zmq.ROUTER, "shell_port"), bound(zmq.ROUTER, "control_port")
    iopub, heartbeat = bound(zmq.PUB, "iopub_port"), bound(zmq.REP, "hb_port")
    bound(zmq.ROUTER, "stdin_port")
    session = Session(key=cfg["key"].encode(), signature_scheme=cfg["signature_scheme"])
    poller = zmq.Poller()
    for sock in (shell, control, heartbeat):
        poller.register(sock, zmq.POLLIN)
    count = 0
    while True:
        for sock, _ in poller.poll():
            if sock is heartbeat:
                heartbeat.send(heartbeat.recv())
                continue
            idents, frames = session.feed_identities(sock.recv_multipart())
            msg = session.deserialize(frames)
            msg_type, parent = msg["header"]["msg_type"], msg["header"]
            session.send(iopub, "status", {"execution_state": "busy"}, parent=parent)
            reply: tuple[str, dict[str, Any]] | None = None
            if msg_type == "kernel_info_request":
                reply = ("kernel_info_reply", {
                    "status": "ok", "protocol_version": "5.3", "implementation": "floor",
                    "implementation_version": "0", "banner": "",
                    "language_info": {"name": "python", "version": sys.version.split()[0]}})
            elif msg_type == "execute_request":
                count += 1
                session.send(iopub, "execute_input",
                             {"code": msg["content"].get("code", ""), "execution_count": count}, parent=parent)
                reply = ("execute_reply", {"status": "ok", "execution_count": count,
                                           "user_expressions": {}, "payload": []})
            elif msg_type == "shutdown_request":
                session.send(sock, "shutdown_reply", {"status": "ok", "restart": False}, parent=parent, ident=idents)
                session.send(iopub, "status", {"execution_state": "idle"}, parent=parent)
                return
            if reply is not None:
                session.send(sock, reply[0], reply[1], parent=parent, ident=idents)
            session.send(iopub, "status", {"execution_state": "idle"}, parent=parent)


def install() -> None:
    """Write the kernelspec ``floor`` into this interpreter's prefix."""
    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "floor"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, str(Path(__file__).resolve()), "{connection_file}"],
            "display_name": "floor (answers only)", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    print(folder)


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        install()
    else:
        serve(sys.argv[1])
