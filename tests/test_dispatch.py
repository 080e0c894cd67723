"""The dispatcher's promises over real sockets: every request gets its reply (whatever
fails), control serves the shell's requests too, stop_on_error aborts exactly what arrived
before the failure, payloads stay with their cell, and memory stays bounded however much a
client sends while a shell is busy. Compared with ipykernel where users can see it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests._fuzzhelpers import RawChannel, execute_ok, kernel_process, new_connection_file, subscribe, wait_for_text
from tests.harness import Frontend, running_kernel, stdout_of


def _execute(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True, **extra}


def _statuses_of(kernel: Frontend, msg_id: str) -> list[str]:
    """The status messages of one request, up to its idle."""
    states = []
    while not states or states[-1] != "idle":
        msg = kernel.iopub_for(msg_id, timeout=10)
        if msg["msg_type"] == "status":
            states.append(msg["content"]["execution_state"])
    return states


# -- every request gets its reply ----------------------------------------------------------


def test_an_error_while_building_the_reply_still_answers(kernel: Frontend) -> None:
    """A payload that cannot be serialised breaks the execute reply itself."""
    reply, _ = kernel.execute("get_ipython().payload_manager.write_payload({'source': 'x', 'obj': object()})")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "TypeError"
    again, outputs = kernel.execute("print('still serving')")
    assert again["content"]["status"] == "ok" and stdout_of(outputs) == "still serving\n"


def test_a_cancelled_raised_by_user_code_is_answered_and_the_shell_keeps_serving(kernel: Frontend) -> None:
    reply, _ = kernel.execute("import trio\nraise trio.Cancelled._create()")
    assert reply["content"]["status"] == "error"
    for _ in range(2):
        again, outputs = kernel.execute("print('next')")
        assert again["content"]["status"] == "ok" and stdout_of(outputs) == "next\n"


def test_a_thread_cell_whose_loop_crashes_is_answered_and_unregistered(kernel: Frontend) -> None:
    code = ("# thread\nimport trio\nasync def crash():\n    raise ValueError('system task')\n"
            "trio.lowlevel.spawn_system_task(crash)\nawait trio.sleep(5)")
    msg_id = kernel.submit(code)
    assert kernel.shell_reply(msg_id)["content"]["status"] == "error"
    kernel.outputs_until_idle(msg_id)
    # Unregistered: an interrupt finds nothing of it to stop, and the kernel goes on.
    assert kernel.control("interrupt_request")["content"]["status"] == "ok"
    again, _ = kernel.execute("# thread\n1")
    assert again["content"]["status"] == "ok"


@pytest.mark.parametrize("kernel_name", ["trio", "python3"])
def test_unknown_shell_type_gets_busy_idle_and_no_reply(kernel_name: str) -> None:
    """As ipykernel: busy, a log line, idle, and no reply (side by side)."""
    with running_kernel(kernel_name) as frontend:
        unknown = frontend.send_shell("frobnicate_request", {})
        assert _statuses_of(frontend, unknown) == ["busy", "idle"]
        reply, _ = frontend.execute("1")
        assert reply["content"]["status"] == "ok"
        assert not frontend.has_reply(unknown)


@pytest.mark.parametrize("kernel_name", ["trio", "python3"])
def test_control_answers_the_shell_requests(kernel_name: str) -> None:
    """The spec makes control "identical to Shell"; ipykernel answers them there (side by side)."""
    with running_kernel(kernel_name) as frontend:
        assert frontend.control("execute_request", _execute("6 * 7"))["content"]["status"] == "ok"
        assert frontend.control("is_complete_request", {"code": "for i in x:"})["content"]["status"] == "incomplete"
        assert frontend.control("complete_request", {"code": "pri", "cursor_pos": 3})["content"]["matches"]
        assert frontend.control("comm_info_request", {})["content"]["status"] == "ok"


def test_unknown_subshell_says_so(kernel: Frontend) -> None:
    reply = kernel.shell_reply(kernel.submit("1", subshell_id="no-such-subshell"))
    assert reply["content"]["status"] == "error"
    assert "no subshell with id 'no-such-subshell'" in reply["content"]["evalue"]


# -- stop_on_error ---------------------------------------------------------------------


def test_stop_on_error_aborts_requests_received_before_the_failure(kernel: Frontend) -> None:
    """The failing cell waits for a thread cell (started at once by the I/O thread) that is
    sent after three queued cells: those were received before the failure, so they abort;
    one sent after the failure was handled runs."""
    kernel.execute("import threading\nfail_gate = threading.Event()")
    failing = kernel.submit("print('go', flush=True)\nassert fail_gate.wait(15)\nraise RuntimeError('stop')")
    kernel.wait_for_stream(failing, "go")
    queued = [kernel.submit("print('should not run')") for _ in range(3)]
    kernel.submit("# thread\nfail_gate.set()")
    assert kernel.shell_reply(failing)["content"]["status"] == "error"
    after = kernel.submit("print('after')")
    for msg_id in queued:
        assert kernel.shell_reply(msg_id)["content"]["status"] == "aborted"
    assert kernel.shell_reply(after)["content"]["status"] == "ok"
    assert stdout_of(kernel.outputs_until_idle(after)) == "after\n"


def test_stop_on_error_false_keeps_the_queue(kernel: Frontend) -> None:
    kernel.execute("import threading\nkeep_gate = threading.Event()")
    failing = kernel.submit("print('go', flush=True)\nassert keep_gate.wait(15)\n1/0", stop_on_error=False)
    kernel.wait_for_stream(failing, "go")
    queued = kernel.submit("print('still runs')")
    kernel.submit("# thread\nkeep_gate.set()")
    assert kernel.shell_reply(failing)["content"]["status"] == "error"
    assert kernel.shell_reply(queued)["content"]["status"] == "ok"


def test_replies_of_one_queue_keep_arrival_order(kernel: Frontend) -> None:
    kernel.execute("import threading\norder_gate = threading.Event()")
    first = kernel.submit("print('go', flush=True)\nassert order_gate.wait(15)\n1/0")
    kernel.wait_for_stream(first, "go")
    rest = [kernel.submit(f"{i}") for i in range(5)]
    kernel.submit("# thread\norder_gate.set()")
    kernel.shell_reply(rest[-1])  # every reply before it has been read and kept, in order
    arrived = [*kernel._replies, rest[-1]]
    assert [i for i in arrived if i in [first, *rest]] == [first, *rest]
    for msg_id in [first, *rest[:-1]]:
        kernel.shell_reply(msg_id)


# -- payloads --------------------------------------------------------------------------


def test_payloads_belong_to_their_cell(kernel: Frontend) -> None:
    kernel.execute("import trio\npayload_gate = trio.Event()")
    first = kernel.submit("# task\nget_ipython().set_next_input('from the first')\nprint('go', flush=True)\n"
                          "with trio.fail_after(15):\n    await payload_gate.wait()")
    kernel.wait_for_stream(first, "go")
    second = kernel.submit("# task\nget_ipython().set_next_input('from the second')\npayload_gate.set()")
    assert [p["text"] for p in kernel.shell_reply(second)["content"]["payload"]] == ["from the second"]
    assert [p["text"] for p in kernel.shell_reply(first)["content"]["payload"]] == ["from the first"]


# -- memory bound ----------------------------------------------------------------------

BIG = 2 * 1024 * 1024
FLOOD = 250


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_big_requests_behind_a_blocked_shell_push_back_and_are_all_answered(tmp_path: Path) -> None:
    """250 requests of 2 MB sent behind a cell that blocks the main thread: the kernel stops
    reading (the client's send times out: back-pressure reached it), its peak memory stays
    bounded, control still gets through (interrupt), and then every request is answered,
    in order."""
    path, info = new_connection_file(tmp_path)
    # A small send high-water mark set before connecting, so that the client feels the
    # push-back as a send that times out.
    with kernel_process(tmp_path, path) as kp, RawChannel(info, send_hwm=1) as shell, \
            RawChannel(info, "control_port") as control:
        execute_ok(shell, "import threading\ngate = threading.Event()")
        sub = subscribe(info)
        try:
            blocker = shell.send("execute_request", _execute("print('go', flush=True)\ngate.wait(60)",
                                                             stop_on_error=False))
            wait_for_text(sub, blocker, "go")
            base = _peak_rss_mb(kp.pid)
            shell.sock.setsockopt(zmq.SNDTIMEO, 2000)
            pad = "x" * BIG
            ids: list[str] = []
            pushed_back = False
            for i in range(FLOOD):
                msg = shell.message("execute_request", _execute(f"n = {i}", pad=pad))
                try:
                    shell.send_frames(shell.frames(msg))
                except zmq.Again:
                    pushed_back = True
                    break
                ids.append(msg["header"]["msg_id"])
            assert pushed_back, f"the kernel took all {FLOOD} requests of 2 MB while its shell was blocked"
            assert control.request("kernel_info_request", {}, 10)["content"]["status"] == "ok"
            assert control.request("interrupt_request", {}, 10)["content"]["status"] == "ok"
            shell.sock.setsockopt(zmq.SNDTIMEO, 60_000)
            for i in range(len(ids), FLOOD):
                ids.append(shell.send("execute_request", _execute(f"n = {i}", pad=pad)))
            deadline = time.monotonic() + 120
            order = []
            while len(order) < FLOOD + 1 and time.monotonic() < deadline:
                msg = shell.recv(deadline - time.monotonic())
                if msg is not None and msg["msg_type"] == "execute_reply":
                    order.append((msg["parent_header"]["msg_id"], msg["content"]["status"]))
            assert [i for i, _ in order] == [blocker, *ids]
            assert [s for _, s in order] == ["error"] + ["ok"] * FLOOD
            growth = _peak_rss_mb(kp.pid) - base
            print(f"\npeak RSS growth {growth:.0f} MB for {FLOOD * BIG / 2**20:.0f} MB sent")
            assert growth < 250, f"peak RSS grew {growth:.0f} MB"
        finally:
            sub.close()
