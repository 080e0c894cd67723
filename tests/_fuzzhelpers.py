"""Helpers for the security, fuzz, flood, fault and soak tests: raw sockets and raw processes.

``jupyter_client``'s clients always sign correctly and never send bad frames, so these
tests build frames themselves with a ``Session`` and push them through plain zmq sockets
(``RawChannel``). Kernels are started as plain processes (``kernel_process``) when a test
needs the kernel's log or its pid, and are always killed and reaped on the way out.
Every wait takes a deadline; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

DELIM = b"<IDS|MSG>"
TIMEOUT = 20.0


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RawChannel:
    """A DEALER (or SUB/REQ) socket to one kernel port, with a Session to sign and parse."""

    def __init__(self, info: dict[str, Any], port_name: str = "shell_port", kind: int = zmq.DEALER,
                 key: bytes | None = None, send_hwm: int = 0) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.DEALER:
            self.sock.setsockopt(zmq.SNDHWM, send_hwm)
            self.sock.setsockopt(zmq.RCVHWM, 0)
            self.sock.setsockopt(zmq.SNDTIMEO, int(TIMEOUT * 1000))
        if kind == zmq.SUB:
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
            self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(f"tcp://{info['ip']}:{info[port_name]}")
        signing_key = info["key"].encode() if key is None else key
        self.session = Session(key=signing_key, signature_scheme=info.get("signature_scheme", "hmac-sha256"),
                               username="fuzz")
        # A reader that accepts anything well signed; replay protection is the kernel's job.
        self.reader = Session(key=signing_key, signature_scheme=info.get("signature_scheme", "hmac-sha256"),
                              digest_history_size=0)
        self.received: list[dict[str, Any]] = []

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()

    def __enter__(self) -> RawChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -------------------------------------------------------------------------

    def message(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        msg = self.session.msg(msg_type, content or {})
        msg["header"]["version"] = "5.5"
        return msg

    def frames(self, msg: dict[str, Any]) -> list[bytes]:
        """Signed frames of ``msg`` (a dict with header, parent_header, metadata, content)."""
        parts = [self.pack(msg.get(k, {})) for k in ("header", "parent_header", "metadata", "content")]
        return self.signed(parts)

    def pack(self, obj: Any) -> bytes:
        return bytes(self.session.pack(obj))

    def signed(self, parts: list[bytes], buffers: Sequence[bytes] = ()) -> list[bytes]:
        """Frames with a correct signature over the four ``parts`` (whatever their bytes)."""
        return [DELIM, self.session.sign(parts[:4]), *parts, *buffers]

    def send_frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames, copy=False)

    def send(self, msg_type: str, content: dict[str, Any] | None = None) -> str:
        msg = self.message(msg_type, content)
        self.send_frames(self.frames(msg))
        return str(msg["header"]["msg_id"])

    # -- receiving -----------------------------------------------------------------------

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next message, parsed and verified, or None after ``timeout`` seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        _, rest = self.reader.feed_identities(frames)
        msg = self.reader.deserialize(rest)
        self.received.append(msg)
        return msg

    def reply_to(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The reply whose parent is ``msg_id`` (others are kept in ``received``)."""
        for msg in self.received:
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {msg_id} in {timeout} s")
            msg = self.recv(remaining)
            if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def request(self, msg_type: str, content: dict[str, Any] | None = None,
                timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.reply_to(self.send(msg_type, content), timeout)

    def replies_to(self, msg_id: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["parent_header"].get("msg_id") == msg_id]


def execute_ok(chan: RawChannel, code: str = "1 + 1", timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run ``code`` and return the reply content, failing unless its status is ok."""
    reply = chan.request("execute_request", {"code": code, "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False,
                                             "stop_on_error": True}, timeout)
    content = reply["content"]
    assert content["status"] == "ok", content
    return content


# -- processes ---------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict (empty when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def rss_mb(pid: int) -> float:
    return int(proc_status(pid)["VmRSS"].split()[0]) / 1024


def thread_count(pid: int) -> int:
    return int(proc_status(pid)["Threads"])


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    state = proc_status(pid).get("State", "")
    return not state or state.startswith(("Z", "X"))


def kernel_pid(km: Any) -> int:
    """The pid of a kernel started by a local ``KernelManager``."""
    return int(km.provisioner.process.pid)


def new_connection_file(directory: Path, **overrides: Any) -> tuple[Path, dict[str, Any]]:
    """A connection file with free ports (written by jupyter_client), then ``overrides``."""
    path = directory / f"conn-{os.getpid()}-{time.monotonic_ns()}.json"
    write_connection_file(str(path), ip="127.0.0.1", key=os.urandom(16).hex().encode())
    info = json.loads(path.read_text())
    for key, value in overrides.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info))
    return path, info


class KernelProcess:
    """A ``python -m kernel`` process whose stderr (its log) goes to a file we can read."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, info: dict[str, Any] | None) -> None:
        self.proc = proc
        self.log = log
        self.info = info

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_count(self, needle: str) -> int:
        return self.log_text().count(needle)

    def wait_log(self, needle: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        wait_until(lambda: self.log_count(needle) >= count, timeout, f"{needle!r} x{count} in the kernel log")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextmanager
def kernel_process(tmp: Path, connection_file: Path | None, *args: str, log_level: str = "WARNING",
                   env: dict[str, str] | None = None) -> Iterator[KernelProcess]:
    """Start ``python -m kernel [-f FILE] ARGS``; kill and reap it on exit whatever happened."""
    log = tmp / f"kernel-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "kernel"]
    if connection_file is not None:
        cmd += ["-f", str(connection_file)]
    cmd += ["--no-history", *args]
    full_env = {**os.environ, "TRIO_KERNEL_LOG_LEVEL": log_level, **(env or {})}
    full_env.pop("JPY_PARENT_PID", None)
    info = json.loads(connection_file.read_text()) if connection_file is not None else None
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=full_env)
    kp = KernelProcess(proc, log, info)
    try:
        yield kp
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def own_connection_file(kp: KernelProcess, timeout: float = TIMEOUT) -> Path:
    """The connection file a kernel started without ``-f`` reports on stderr."""
    def find() -> Path | None:
        for line in kp.log_text().splitlines():
            if "--existing " in line:
                return Path(line.split("--existing ", 1)[1].strip())
        if kp.proc.poll() is not None:
            raise AssertionError(f"kernel exited early: {kp.log_text()}")
        return None

    return wait_until(find, timeout, "the kernel to print its connection file")


def wait_ready(info: dict[str, Any], timeout: float = TIMEOUT) -> None:
    """Block until the kernel answers kernel_info on its shell socket."""
    with RawChannel(info) as chan:
        reply = chan.request("kernel_info_request", {}, timeout)
        assert reply["content"]["status"] == "ok"


def subscribe(info: dict[str, Any], timeout: float = TIMEOUT) -> RawChannel:
    """A SUB socket on iopub, returned once the kernel has seen the subscription (its welcome)."""
    sub = RawChannel(info, "iopub_port", zmq.SUB)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            sub.close()
            raise TimeoutError("no iopub_welcome")
        msg = sub.recv(remaining)
        if msg is not None and msg["msg_type"] == "iopub_welcome":
            sub.received.clear()
            return sub


def wait_for_text(sub: RawChannel, msg_id: str, text: str, timeout: float = TIMEOUT) -> None:
    """Block until the cell ``msg_id`` has printed ``text`` (seen on the iopub ``sub``)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while text not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{text!r} not printed by {msg_id} in {timeout} s")
        msg = sub.recv(remaining)
        if msg is not None and msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            seen += msg["content"]["text"]
