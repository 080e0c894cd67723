"""A frontend for tests: a real kernel process, real zmq sockets, jupyter_client as client.

Every wait has a timeout, so a hang fails fast; every message the kernel sends is checked
against the messaging spec (``msgspec``) as it is read.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from tests.msgspec import assert_valid

KERNEL_NAME = os.environ.get("TRIO_KERNEL_NAME", "trio")
TIMEOUT = 20.0


def _check(msg: dict[str, Any]) -> dict[str, Any]:
    assert_valid(msg)
    return msg


class Frontend:
    """One kernel and a client attached to it."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km = km
        self.kc = kc

    def iopub(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return _check(self.kc.get_iopub_msg(timeout=timeout))

    def shell_reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The shell reply to ``msg_id`` (replies to other requests are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no shell reply to {msg_id} in {timeout} s")
            msg = _check(self.kc.get_shell_msg(timeout=remaining))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def control(self, msg_type: str, content: dict[str, Any] | None = None,
                timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send a request on control and return its reply."""
        msg = self.kc.session.msg(msg_type, content or {})
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = _check(self.kc.control_channel.get_msg(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply

    def outputs_until_idle(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """iopub messages of ``msg_id`` from busy to idle (exclusive)."""
        deadline = time.monotonic() + timeout
        out: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle for {msg_id} in {timeout} s")
            msg = self.iopub(timeout=remaining)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    return out
                continue
            out.append(msg)

    def execute(self, code: str, timeout: float = TIMEOUT, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``code``; return (reply, outputs until idle)."""
        msg_id = self.kc.execute(code, **kwargs)
        outputs = self.outputs_until_idle(msg_id, timeout)
        return self.shell_reply(msg_id, timeout), outputs

    def wait_for_stream(self, msg_id: str, text: str, timeout: float = TIMEOUT) -> None:
        """Block until ``msg_id`` printed ``text`` (proof that a cell is running)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while text not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} not printed by {msg_id} in {timeout} s")
            msg = self.iopub(timeout=remaining)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen += msg["content"]["text"]

    def drain_iopub(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                return


def stdout_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


@contextmanager
def running_kernel(kernel_name: str = KERNEL_NAME, **km_kwargs: Any) -> Iterator[Frontend]:
    """Start a kernel, yield a frontend, and make sure the process is gone afterwards."""
    km = KernelManager(kernel_name=kernel_name, **km_kwargs)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        yield Frontend(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
