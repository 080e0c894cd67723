"""One benchmarked kernel: launch it, talk to it over raw zmq, reap it.

The benchmark reads the kernel's sockets itself instead of going through
``BlockingKernelClient.get_*_msg``: that wraps one asyncio round per message,
and the client's overhead would cap the score of whichever kernel is faster.
Everything here runs in the main thread; zmq sockets are not thread-safe.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from time import perf_counter
from typing import IO, Any

import zmq
from jupyter_client import KernelManager

DELIMITER = b"<IDS|MSG>"
CHANNELS = ("shell", "iopub", "control")


@dataclass
class Msg:
    """A received message; content is decoded only when someone asks for it."""

    channel: str
    msg_type: str
    parent_id: str
    received_at: float
    raw_content: bytes

    @cached_property
    def content(self) -> dict[str, Any]:
        """Decode lazily: a 20 MB display or 10,000 stream messages cost JSON time."""
        return json.loads(self.raw_content)


@dataclass
class Track:
    """What has arrived so far for one request, keyed by its msg_id elsewhere."""

    busy_at: float | None = None
    output_at: float | None = None
    reply: Msg | None = None
    idle_at: float | None = None

    @property
    def done_at(self) -> float:
        """Reply and idle can arrive in either order; the request ends at the later."""
        assert self.reply is not None and self.idle_at is not None
        return max(self.reply.received_at, self.idle_at)


class Kernel:
    """A kernel process plus shell, iopub and control sockets connected to it."""

    def __init__(self, name: str, log: IO[bytes] | None = None) -> None:
        self.name = name
        self.km = KernelManager(kernel_name=name)
        self.km.shutdown_wait_time = 3.0
        self.info: dict[str, Any] = {}
        self.tracks: defaultdict[str, Track] = defaultdict(Track)
        self.listener: Callable[[Msg], None] | None = None
        self._log = log
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._channel_of: dict[zmq.Socket[bytes], str] = {}
        self._poller = zmq.Poller()
        self._launched_at = 0.0

    @property
    def implementation(self) -> str:
        """From kernel_info: picks the trio or asyncio flavour of a cell."""
        return str(self.info.get("implementation", ""))

    def start(self, timeout: float) -> float:
        """Launch the process; return seconds until its first kernel_info_reply."""
        t0 = self._launched_at = perf_counter()
        self.km.start_kernel(stdout=self._log, stderr=self._log)
        for channel in CHANNELS:
            sock = getattr(self.km, f"connect_{channel}")()
            self._sockets[channel] = sock
            self._channel_of[sock] = channel
            self._poller.register(sock, zmq.POLLIN)
        reply = self._first_reply("shell", "kernel_info_request", timeout)
        self.info = reply.content
        return reply.received_at - t0

    def warm_up(self, timeout: float) -> float:
        """Wait until iopub delivers (a SUB socket misses what is sent before it joins);
        return seconds from launch to that first execute_reply."""
        reply = self._first_reply("shell", "execute_request", timeout, idle=True)
        return reply.received_at - self._launched_at

    def _first_reply(self, channel: str, msg_type: str, timeout: float, idle: bool = False) -> Msg:
        """Resend once a second until one copy is answered (and idle, if asked)."""
        deadline = perf_counter() + timeout
        sent: list[str] = []

        def answered() -> Track | None:
            for msg_id in sent:
                track = self.tracks.get(msg_id)
                if track and track.reply and (track.idle_at or not idle):
                    return track
            return None

        content = _execute_content("pass", history=False) if idle else {}
        while True:
            sent.append(self.send(channel, msg_type, content))
            try:
                self.wait_until(lambda: answered() is not None, 1.0, "")
            except TimeoutError:
                if perf_counter() > deadline:
                    raise TimeoutError(f"no {msg_type} answer in {timeout:g} s") from None
                if not self.km.is_alive():
                    raise RuntimeError("kernel process exited; see the kernels log") from None
                continue
            track = answered()
            assert track is not None and track.reply is not None
            return track.reply

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Sign and send one request; return its msg_id."""
        msg = self.km.session.msg(msg_type, content)
        self.km.session.send(self._sockets[channel], msg)
        return str(msg["header"]["msg_id"])

    def execute(self, code: str) -> str:
        """Send an execute_request without waiting for anything."""
        return self.send("shell", "execute_request", _execute_content(code, history=True))

    def pump(self, timeout: float) -> None:
        """Wait up to timeout seconds for traffic, then handle everything queued."""
        for sock, _ in self._poller.poll(max(0.0, timeout) * 1000):
            channel = self._channel_of[sock]
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._handle(self._decode(channel, frames))

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Pump until done() holds; raise TimeoutError(what) at the deadline."""
        deadline = perf_counter() + timeout
        while not done():
            left = deadline - perf_counter()
            if left <= 0:
                raise TimeoutError(what)
            self.pump(left)

    def await_done(self, msg_id: str, timeout: float) -> Track:
        """Wait for the request's reply, then for the idle status it caused."""
        track = self.tracks[msg_id]
        self.wait_until(lambda: track.reply is not None, timeout, f"no reply in {timeout:g} s")
        self.wait_until(lambda: track.idle_at is not None, timeout, f"no idle in {timeout:g} s")
        return track

    def run_cell(self, code: str, timeout: float) -> Track:
        """Execute code and wait until it is completely finished."""
        return self.await_done(self.execute(code), timeout)

    def start_cell(self, code: str, timeout: float) -> str:
        """Execute code and return once it is busy and has printed its first output."""
        msg_id = self.execute(code)
        track = self.tracks[msg_id]
        self.wait_until(
            lambda: track.busy_at is not None and track.output_at is not None,
            timeout,
            f"cell not running after {timeout:g} s",
        )
        return msg_id

    @contextmanager
    def listening(self, listener: Callable[[Msg], None]) -> Iterator[None]:
        """Show every received message to listener while the block runs."""
        self.listener = listener
        try:
            yield
        finally:
            self.listener = None

    def _decode(self, channel: str, frames: list[bytes]) -> Msg:
        """Check the signature and parse only the header and parent header."""
        i = frames.index(DELIMITER)
        signature, header, parent, metadata, content = frames[i + 1 : i + 6]
        session = self.km.session
        if session.auth is not None:
            expected = session.sign([header, parent, metadata, content])
            if not hmac.compare_digest(signature, expected):
                raise ValueError(f"bad signature on {channel} message")
        head = json.loads(header)
        parent_id = (json.loads(parent) or {}).get("msg_id", "")  # xeus-python sends null
        return Msg(channel, head["msg_type"], parent_id, perf_counter(), content)

    def _handle(self, msg: Msg) -> None:
        """Record the events the scenarios wait on, then tell the listener."""
        if msg.parent_id:
            track = self.tracks[msg.parent_id]
            if msg.msg_type == "status":
                state = msg.content.get("execution_state")
                if state == "busy" and track.busy_at is None:
                    track.busy_at = msg.received_at
                elif state == "idle":
                    track.idle_at = msg.received_at
            elif msg.msg_type == "stream" and track.output_at is None:
                track.output_at = msg.received_at
            elif msg.channel != "iopub" and msg.msg_type.endswith("_reply"):
                track.reply = msg
        if self.listener is not None:
            self.listener(msg)

    def rss_mb(self) -> float:
        """Resident memory of the kernel process and any children, in MiB."""
        pid = self._pid()
        return sum(_vm_rss_kib(p) for p in _process_tree(pid)) / 1024

    def _pid(self) -> int:
        process = getattr(self.km.provisioner, "process", None)
        if process is None:
            raise RuntimeError("kernel process is not local; cannot read its RSS")
        return int(process.pid)

    def close(self, now: bool = False) -> None:
        """Shut the kernel down and reap it; kill it if it does not go quietly."""
        for sock in self._sockets.values():
            self._poller.unregister(sock)
            sock.close(linger=0)
        self._sockets.clear()
        if not self.km.has_kernel:
            return
        try:
            self.km.shutdown_kernel(now=now)
        except (RuntimeError, OSError, zmq.ZMQError):
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)


def _execute_content(code: str, history: bool) -> dict[str, Any]:
    return {
        "code": code,
        "silent": False,
        "store_history": history,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def _process_tree(pid: int) -> list[int]:
    """List pid and its descendants, so a launcher wrapper does not hide the real kernel."""
    found = [pid]
    for child in _children(pid):
        found.extend(_process_tree(child))
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return kids


def _vm_rss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
