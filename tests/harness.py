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
        self._replies: dict[str, dict[str, Any]] = {}
        self._iopub_stash: dict[str, list[dict[str, Any]]] = {}

    def iopub(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return _check(self.kc.get_iopub_msg(timeout=timeout))

    def shell_reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The shell reply to ``msg_id``; replies to other requests are kept for later."""
        deadline = time.monotonic() + timeout
        while msg_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no shell reply to {msg_id} in {timeout} s")
            try:
                msg = _check(self.kc.get_shell_msg(timeout=remaining))
            except queue.Empty:
                continue
            self._replies[msg["parent_header"].get("msg_id", "")] = msg
        return self._replies.pop(msg_id)

    def has_reply(self, msg_id: str) -> bool:
        """Whether the reply to ``msg_id`` has arrived (without waiting; it stays kept)."""
        while True:
            try:
                msg = _check(self.kc.get_shell_msg(timeout=0))
            except queue.Empty:
                return msg_id in self._replies
            self._replies[msg["parent_header"].get("msg_id", "")] = msg

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

    def iopub_for(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next iopub message whose parent is ``msg_id``; others are kept for later."""
        stash = self._iopub_stash.get(msg_id)
        if stash:
            return stash.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no iopub message for {msg_id} in {timeout} s")
            try:
                msg = self.iopub(timeout=remaining)
            except queue.Empty:
                continue
            parent = msg["parent_header"].get("msg_id", "")
            if parent == msg_id:
                return msg
            self._iopub_stash.setdefault(parent, []).append(msg)

    def outputs_until_idle(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """iopub messages of ``msg_id`` up to its idle status (status messages left out)."""
        deadline = time.monotonic() + timeout
        out: list[dict[str, Any]] = []
        while True:
            msg = self.iopub_for(msg_id, timeout=max(deadline - time.monotonic(), 0.0))
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    return out
                continue
            out.append(msg)

    def execute(
        self, code: str, timeout: float = TIMEOUT, **kwargs: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``code``; return (reply, outputs until idle)."""
        msg_id = self.kc.execute(code, **kwargs)
        outputs = self.outputs_until_idle(msg_id, timeout)
        return self.shell_reply(msg_id, timeout), outputs

    def send_shell(self, msg_type: str, content: dict[str, Any], subshell_id: str | None = None,
                   metadata: dict[str, Any] | None = None) -> str:
        """Send a shell request (optionally to a subshell); return its msg_id."""
        msg = self.kc.session.msg(msg_type, content, metadata=metadata)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def submit(self, code: str, subshell_id: str | None = None, tags: list[str] | None = None,
               **content: Any) -> str:
        """Send an execute_request without waiting; return its msg_id."""
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True, **content}
        return self.send_shell("execute_request", body, subshell_id,
                               metadata={"tags": tags} if tags is not None else None)

    def wait_for_stream(self, msg_id: str, text: str, timeout: float = TIMEOUT) -> None:
        """Block until ``msg_id`` printed ``text`` (proof that a cell is running)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while text not in seen:
            msg = self.iopub_for(msg_id, timeout=max(deadline - time.monotonic(), 0.0))
            if msg["msg_type"] == "stream":
                seen += msg["content"]["text"]



def stdout_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


@contextmanager
def running_kernel(kernel_name: str = KERNEL_NAME, env_extra: dict[str, str] | None = None,
                   extra_arguments: list[str] | None = None, env_drop: tuple[str, ...] = (),
                   stderr: Any = None, cwd: str | None = None, **km_kwargs: Any) -> Iterator[Frontend]:
    """Start a kernel, yield a frontend, and make sure the process is gone afterwards.

    ``extra_arguments`` are appended to the kernelspec's command line, as nbclient and
    papermill do; ``env_drop`` names variables the kernel must not inherit; ``stderr``
    (a file) receives the kernel process's stderr.
    """
    km = KernelManager(kernel_name=kernel_name, **km_kwargs)
    start_kwargs: dict[str, Any] = {}
    if env_extra or env_drop:
        env = {**os.environ, **(env_extra or {})}
        start_kwargs["env"] = {k: v for k, v in env.items() if k not in env_drop}
    if extra_arguments:
        start_kwargs["extra_arguments"] = list(extra_arguments)
    if stderr is not None:
        start_kwargs["stderr"] = stderr
    if cwd is not None:
        start_kwargs["cwd"] = cwd
    km.start_kernel(**start_kwargs)
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
