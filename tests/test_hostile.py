"""Hostile cells and hostile timing: every request gets its reply and the shell never dies.

Each test here reproduces a fault found by experiment (issue 11) over real sockets against a
``python -m kernel`` process whose log we read: escalated interrupts landing in trio's
internals, a second KeyboardInterrupt for one interrupt, a timeout hitting the wrong cell,
user code that replaces the SIGINT handler, leaks a cancel scope or raises a stray
``trio.Cancelled``. Where ipykernel behaves differently the test says so (or runs both).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests._fuzzhelpers import (
    TIMEOUT,
    KernelProcess,
    RawChannel,
    kernel_process,
    new_connection_file,
    own_connection_file,
    subscribe,
    wait_ready,
)
from tests.harness import running_kernel, stdout_of

BAD_LOG_LINES = ("Traceback", "TrioInternalError", "Exception in thread", "Cancel scope stack corrupted")


class Raw:
    """A kernel process with raw shell, control and iopub sockets."""

    def __init__(self, kp: KernelProcess, shell: RawChannel, control: RawChannel, sub: RawChannel) -> None:
        self.kp, self.shell, self.control, self.sub = kp, shell, control, sub

    def submit(self, code: str, **content: Any) -> str:
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True, **content}
        return self.shell.send("execute_request", body)

    def reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.shell.reply_to(msg_id, timeout)["content"]

    def run(self, code: str, timeout: float = TIMEOUT, **content: Any) -> dict[str, Any]:
        return self.reply(self.submit(code, **content), timeout)

    def started(self, msg_id: str, text: str = "go", timeout: float = TIMEOUT) -> None:
        """Block until cell ``msg_id`` printed ``text`` (iopub messages are all kept)."""
        deadline = time.monotonic() + timeout
        while text not in self.stdout(msg_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} not printed by {msg_id}")
            self.sub.recv(remaining)

    def stdout(self, msg_id: str) -> str:
        return "".join(m["content"]["text"] for m in self.sub.received
                       if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)

    def drain_iopub(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """iopub messages of ``msg_id`` up to its idle status."""
        deadline = time.monotonic() + timeout
        while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                      and m["parent_header"].get("msg_id") == msg_id for m in self.sub.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle for {msg_id}")
            self.sub.recv(remaining)
        return [m for m in self.sub.received if m["parent_header"].get("msg_id") == msg_id]

    def interrupt(self) -> None:
        assert self.control.request("interrupt_request")["content"]["status"] == "ok"

    def assert_clean_log(self) -> None:
        text = self.kp.log_text()
        for bad in BAD_LOG_LINES:
            assert bad not in text, text

    def assert_serves_then_exits_cleanly(self) -> None:
        """The kernel still runs a cell, then shuts down with status 0 and a clean log."""
        assert self.run("print('alive')")["status"] == "ok"
        self.kp.stop()
        assert self.kp.proc.returncode == 0, self.kp.log_text()
        self.assert_clean_log()


@contextmanager
def raw_kernel(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Raw]:
    path, info = new_connection_file(tmp_path)
    with kernel_process(tmp_path, path, *args, env=env) as kp:
        wait_ready(info)
        with RawChannel(info) as shell, RawChannel(info, "control_port") as control, subscribe(info) as sub:
            yield Raw(kp, shell, control, sub)


# -- escalation lands only in user code, once -------------------------------------------------

MIXED_THREAD_CELLS = [
    "# thread\nimport trio\nprint('go', flush=True)\nawait trio.sleep(60)",
    "# thread\nprint('go', flush=True)\nwhile True:\n    pass",
    "# thread\nimport trio\nprint('go', flush=True)\nwhile True:\n    await trio.sleep(0)",
    "# thread\nimport time\nprint('go', flush=True)\nwhile True:\n    time.sleep(0.001)",
    "# task\nimport trio\nprint('go', flush=True)\nwhile True:\n    await trio.sleep(0.001)",
]


def test_interrupt_reaches_only_user_code_of_many_thread_cells(tmp_path: Path) -> None:
    """Awaiting, spinning and yielding thread cells side by side, interrupted ten times: every
    cell gets its KeyboardInterrupt reply and no exception ever lands in trio or the kernel."""
    with raw_kernel(tmp_path) as k:
        for _ in range(10):
            ids = [k.submit(code) for code in MIXED_THREAD_CELLS]
            for msg_id in ids:
                k.started(msg_id)
            k.interrupt()
            for msg_id in ids:
                assert k.reply(msg_id)["ename"] == "KeyboardInterrupt"
            k.sub.received.clear()
        k.assert_serves_then_exits_cleanly()


def test_interrupt_reaches_blocking_code_in_a_task_the_cell_started(tmp_path: Path) -> None:
    """The SIGINT escalation finds the cell of a task it started (its context), so blocking
    code there is interrupted too, and reported as the KeyboardInterrupt it is."""
    with raw_kernel(tmp_path) as k:
        msg_id = k.submit("import trio\nasync def spin():\n    while True:\n        pass\n"
                          "print('go', flush=True)\nasync with trio.open_nursery() as nursery:\n"
                          "    nursery.start_soon(spin)")
        k.started(msg_id)
        k.interrupt()
        assert k.reply(msg_id)["ename"] == "KeyboardInterrupt"
        assert k.run("print('alive')")["status"] == "ok"
        k.assert_clean_log()


CATCH_AND_CLEAN_UP = {
    "sync cleanup": ("import time\nn = 0\ntry:\n    print('go', flush=True)\n    while True:\n        pass\n"
                     "except KeyboardInterrupt:\n    n += 1\n    time.sleep(0.8)\nprint('cleaned', n)"),
    "await cleanup": ("import trio, time\nn = 0\ntry:\n    print('go', flush=True)\n    while True:\n"
                      "        time.sleep(0.001)\nexcept KeyboardInterrupt:\n    n += 1\n    await trio.sleep(0.5)\n"
                      "print('cleaned', n)"),
    "thread sync cleanup": ("# thread\nimport time\nn = 0\ntry:\n    print('go', flush=True)\n    while True:\n"
                            "        pass\nexcept KeyboardInterrupt:\n    n += 1\n    t = time.monotonic()\n"
                            "    while time.monotonic() - t < 0.8:\n        pass\nprint('cleaned', n)"),
}


@pytest.mark.parametrize("mode", ["message", "signal"])
@pytest.mark.parametrize("case", list(CATCH_AND_CLEAN_UP))
def test_one_interrupt_is_one_keyboard_interrupt(tmp_path: Path, case: str, mode: str) -> None:
    """A cell that catches the KeyboardInterrupt and cleans up (blocking or awaiting) is left
    alone: no second KeyboardInterrupt from a repeated escalation, no cancellation of its
    cleanup, whether the interrupt came as a message or as an external SIGINT."""
    with raw_kernel(tmp_path) as k:
        msg_id = k.submit(CATCH_AND_CLEAN_UP[case])
        k.started(msg_id)
        if mode == "message":
            k.interrupt()
        else:
            os.kill(k.kp.pid, signal.SIGINT)
        reply = k.reply(msg_id)
        assert reply["status"] == "ok", reply
        k.drain_iopub(msg_id)
        assert "cleaned 1" in k.stdout(msg_id)
        k.assert_clean_log()


def test_one_interrupt_is_one_keyboard_interrupt_ipykernel() -> None:
    """ipykernel, for comparison: the same sync cell gets one KeyboardInterrupt and ends ok."""
    with running_kernel("python3") as fe:
        msg_id = fe.submit(CATCH_AND_CLEAN_UP["sync cleanup"])
        fe.wait_for_stream(msg_id, "go")
        fe.control("interrupt_request")
        assert fe.shell_reply(msg_id)["content"]["status"] == "ok"
        assert "cleaned 1" in stdout_of(fe.outputs_until_idle(msg_id))


def test_timeout_cancels_only_its_own_cell(tmp_path: Path) -> None:
    """An awaiting task cell times out while another task cell blocks the loop: only the
    timed-out cell fails; the busy one finishes its work."""
    with raw_kernel(tmp_path) as k:
        waiting = k.submit("# task timeout=0.2\nimport trio\nprint('go', flush=True)\nawait trio.sleep(60)")
        k.started(waiting)
        busy = k.submit("# task\nimport time\nprint('go', flush=True)\nt = time.monotonic()\n"
                        "while time.monotonic() - t < 1.5:\n    pass\nprint('busy done')")
        k.started(busy)
        assert k.reply(busy)["status"] == "ok"
        timed_out = k.reply(waiting)
        assert timed_out["ename"] == "TimeoutError", timed_out
        k.assert_clean_log()


# -- user code that replaces the SIGINT handler ------------------------------------------------

@pytest.mark.parametrize("handler", ["signal.SIG_IGN", "signal.default_int_handler", "lambda *a: None"])
def test_changed_sigint_handler_does_not_disable_interrupt(tmp_path: Path, handler: str) -> None:
    with raw_kernel(tmp_path) as k:
        changed = k.submit(f"import signal\nsignal.signal(signal.SIGINT, {handler})")
        assert k.reply(changed)["status"] == "ok"
        k.drain_iopub(changed)
        assert "SIGINT" in k.stdout(changed) or any(
            m["msg_type"] == "stream" for m in k.sub.received if m["parent_header"].get("msg_id") == changed)
        spinning = k.submit("print('go', flush=True)\nwhile True:\n    pass")
        k.started(spinning)
        k.interrupt()
        assert k.reply(spinning, timeout=10)["ename"] == "KeyboardInterrupt"
        # A SIGINT while idle is harmless (default_int_handler would have killed the kernel).
        os.kill(k.kp.pid, signal.SIGINT)
        assert k.run("print('alive')")["status"] == "ok"
        assert k.kp.proc.poll() is None
        k.assert_clean_log()


def test_changed_sigint_handler_ipykernel() -> None:
    """ipykernel, for comparison: it also puts its handler back after each request, so a
    later blocking cell is interrupted (within one block it cannot be, and says nothing)."""
    with running_kernel("python3") as fe:
        reply, _ = fe.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)")
        assert reply["content"]["status"] == "ok"
        msg_id = fe.submit("print('go', flush=True)\nwhile True:\n    pass")
        fe.wait_for_stream(msg_id, "go")
        fe.control("interrupt_request")
        assert fe.shell_reply(msg_id, timeout=10)["content"]["ename"] == "KeyboardInterrupt"


def test_interrupt_that_cannot_be_delivered_is_reported(tmp_path: Path) -> None:
    """A cell that ignores SIGINT and then blocks cannot be stopped by a signal: it is told."""
    with raw_kernel(tmp_path) as k:
        # One block (the kernel checks its handler after every top-level statement).
        msg_id = k.submit("import signal, time\nif True:\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                          "    print('go', flush=True)\n    t = time.monotonic()\n"
                          "    while time.monotonic() - t < 2:\n        pass\n    print('finished')")
        k.started(msg_id)
        k.interrupt()
        k.reply(msg_id)
        k.drain_iopub(msg_id)
        streams = "".join(m["content"]["text"] for m in k.sub.received
                          if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)
        assert "could not be delivered" in streams, streams
        spinning = k.submit("print('go', flush=True)\nwhile True:\n    pass")
        k.started(spinning)
        k.interrupt()
        assert k.reply(spinning, timeout=10)["ename"] == "KeyboardInterrupt"


# -- cells that break trio's cancellation -----------------------------------------------------

HOSTILE_CANCEL = {
    "open cancel scope": "import trio\ncs = trio.CancelScope()\ncs.__enter__()",
    "open cancel scope, async": "import trio\ncs = trio.CancelScope()\ncs.__enter__()\nawait trio.sleep(0)",
    "stray Cancelled": ("import trio\nsaved = None\nwith trio.CancelScope() as cs:\n    cs.cancel()\n    try:\n"
                        "        await trio.sleep(1)\n    except trio.Cancelled as exc:\n        saved = exc\n"
                        "raise saved"),
    "stray Cancelled, sync": ("import trio\nsaved = None\nwith trio.CancelScope() as cs:\n    cs.cancel()\n"
                              "    try:\n        await trio.sleep(1)\n    except trio.Cancelled as exc:\n"
                              "        saved = exc\n"),
}


@pytest.mark.parametrize("mode", ["", "# task\n", "# thread\n"])
@pytest.mark.parametrize("case", list(HOSTILE_CANCEL))
def test_hostile_cancellation_gets_an_error_reply_and_the_shell_serves_on(
        tmp_path: Path, case: str, mode: str) -> None:
    with raw_kernel(tmp_path) as k:
        code = HOSTILE_CANCEL[case]
        if case == "stray Cancelled, sync":
            assert k.run(mode + code)["status"] == "ok"
            code = "raise saved"
        msg_id = k.submit(mode + code)
        reply = k.reply(msg_id, timeout=10)
        assert reply["status"] == "error", reply
        statuses = [m["content"]["execution_state"] for m in k.drain_iopub(msg_id) if m["msg_type"] == "status"]
        assert statuses[-1] == "idle"
        for _ in range(3):
            assert k.run("print('alive')", timeout=10)["status"] == "ok"
        waiting = k.submit("import trio\nprint('go', flush=True)\nawait trio.sleep(60)")
        k.started(waiting)
        k.interrupt()
        assert k.reply(waiting, timeout=10)["ename"] == "KeyboardInterrupt"
        k.kp.stop()
        assert k.kp.proc.returncode == 0, k.kp.log_text()


def test_hostile_cancellation_ipykernel() -> None:
    """ipykernel, for comparison: the same cells (no trio loop there) fail with an error reply."""
    with running_kernel("python3") as fe:
        for code in HOSTILE_CANCEL.values():
            reply, _ = fe.execute(code)
            assert reply["content"]["status"] == "error"


# -- every request gets its reply --------------------------------------------------------------

def test_create_subshell_whose_thread_dies_at_start_up_gets_an_error_reply(tmp_path: Path) -> None:
    with raw_kernel(tmp_path) as k:
        assert k.run("import kernel._shell.runner as _r\n_orig = _r.ShellRunner.run_in_own_loop\n"
                     "def _boom(self, on_ready):\n    raise RuntimeError('boom at start-up')\n"
                     "_r.ShellRunner.run_in_own_loop = _boom")["status"] == "ok"
        reply = k.control.request("create_subshell_request", {}, timeout=15)["content"]
        assert reply["status"] == "error" and "start-up" in reply["evalue"], reply
        assert k.control.request("list_subshell_request")["content"]["subshell_id"] == []
        assert k.run("_r.ShellRunner.run_in_own_loop = _orig")["status"] == "ok"
        created = k.control.request("create_subshell_request")["content"]
        assert created["status"] == "ok"
        assert k.control.request("delete_subshell_request",
                                 {"subshell_id": created["subshell_id"]})["content"]["status"] == "ok"


def test_duplicate_input_reply_never_replaces_the_first() -> None:
    with running_kernel() as fe:
        kc = fe.kc
        msg_id = kc.execute("got = []\nfor i in range(20):\n    got.append(input(f'{i}? '))\n"
                            "print(got == [f'answer {i}' for i in range(20)])", allow_stdin=True)
        for i in range(20):
            request = kc.get_stdin_msg(timeout=TIMEOUT)
            assert request["content"]["prompt"] == f"{i}? "
            for value in (f"answer {i}", "a duplicate"):
                kc.stdin_channel.send(kc.session.msg("input_reply", {"value": value}, parent=request["header"]))
        assert stdout_of(fe.outputs_until_idle(msg_id)) == "True\n"
        assert fe.shell_reply(msg_id)["content"]["status"] == "ok"


def test_duplicate_input_reply_unit() -> None:
    """The same race, made deterministic: both replies arrive before the waiter wakes."""
    from kernel._core.enums import Channel
    from kernel._core.wire import Message, Outgoing
    from kernel._shell.cell import Cell
    from kernel._shell.stdin import StdinBroker

    def send(out: Outgoing) -> None:
        assert out.header is not None
        for value in ("first", "duplicate"):
            broker.deliver(Message(Channel.STDIN, [], {"msg_type": "input_reply", "msg_id": value},
                                   {"msg_id": out.header["msg_id"]}, {}, {"value": value}))

    broker = StdinBroker(send, lambda msg_type: {"msg_id": f"req-{msg_type}"})
    cell = Cell(parent={}, iopub=None, allow_stdin=True)  # type: ignore[arg-type]
    assert broker.request(cell, "? ", False) == "first"


# -- error paths release what they took; small limits ------------------------------------------

async def test_a_failed_start_undoes_its_process_wide_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner fails to start after the streams, the shell singleton and the comm
    manager were installed: leaving ``open_kernel`` puts all of them back."""
    import sys

    import trio
    from IPython.core.interactiveshell import InteractiveShell

    import kernel
    from kernel._shell import runner as _runner

    async def broken_run(self: object, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise RuntimeError("runner failed to start")

    monkeypatch.setattr(_runner.ShellRunner, "run", broken_run)
    stdout, stderr = sys.stdout, sys.stderr
    with pytest.raises(BaseException) as info:
        async with kernel.open_kernel():
            pass
    assert info.group_contains(RuntimeError, match="runner failed to start") if isinstance(
        info.value, BaseExceptionGroup) else "runner failed to start" in str(info.value)
    assert sys.stdout is stdout and sys.stderr is stderr
    assert not InteractiveShell.initialized()


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernel", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("scheme", ["hmac-shake_128", "hmac-nope", "sha256"])
def test_unsupported_signature_scheme_is_one_line_and_exit_2(tmp_path: Path, scheme: str) -> None:
    path, _ = new_connection_file(tmp_path, signature_scheme=scheme)
    result = _run_cli("-f", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"trio-kernel: unsupported signature_scheme {scheme!r} in {path}"]


def test_connection_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _run_cli(env={"JUPYTER_RUNTIME_DIR": str(blocker / "runtime")})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trio-kernel: cannot write the connection file"), lines


def test_runtime_dir_the_kernel_creates_is_private(tmp_path: Path) -> None:
    runtime = tmp_path / "new" / "runtime"
    with kernel_process(tmp_path, None, env={"JUPYTER_RUNTIME_DIR": str(runtime)}) as kp:
        path = own_connection_file(kp)
        assert path.parent == runtime
        for directory in (runtime, runtime.parent):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, oct(directory.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        kp.stop()
        assert kp.proc.returncode == 0


def test_one_huge_line_becomes_bounded_stream_messages(tmp_path: Path) -> None:
    with raw_kernel(tmp_path) as k:
        msg_id = k.submit("print('x' * 20_000_000)")
        assert k.reply(msg_id, timeout=60)["status"] == "ok"
        streams = [m for m in k.drain_iopub(msg_id, timeout=60) if m["msg_type"] == "stream"]
        sizes = [len(m["content"]["text"].encode()) for m in streams]
        assert sum(sizes) == 20_000_001
        assert max(sizes) <= 256 * 1024, max(sizes)


def test_a_failed_io_loop_releases_writers_held_by_back_pressure() -> None:
    """The I/O loop fails; its outboxes are closed on the way out, so a thread printing more
    than the back-pressure bound returns instead of waiting forever for a drain."""
    import threading

    from kernel._control.ioloop import IOLoop
    from kernel._core.wire import make_session
    from kernel._transport.connection import bind_kernel_sockets

    bound = bind_kernel_sockets(None)
    ready = threading.Event()
    io = IOLoop(make_session(bound.info.key), bound.sockets, on_ready=lambda _: ready.set(),
                on_shutdown=lambda restart: None)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            io.run()
        except BaseException as exc:
            failures.append(exc)

    async def fail() -> None:
        raise RuntimeError("the I/O loop failed")

    loop = threading.Thread(target=run)
    loop.start()
    try:
        assert ready.wait(TIMEOUT)
        io.post(fail)
        loop.join(TIMEOUT)
        assert failures and not loop.is_alive()
        assert io.iopub is not None
        chunk = "x" * (9 << 20)
        writer = threading.Thread(target=lambda: [io.iopub.write_stream({}, "stdout", chunk) for _ in range(3)],
                                  daemon=True)  # never joined if it hangs: the test fails instead
        writer.start()
        writer.join(TIMEOUT)
        assert not writer.is_alive(), "a writer waits forever on an outbox nobody drains"
    finally:
        io.stop_threadsafe()
        loop.join(TIMEOUT)
        bound.close()
