"""The kernel's own messages are batched into one wake-up of the I/O thread, but never held
back by user code: a cell that blocks from its first line still shows busy and its input."""

from __future__ import annotations

from tests.harness import Frontend

WAIT = 10.0  # the cell blocks for 60 s: a held busy would arrive only after it


def test_busy_and_input_reach_the_frontend_while_a_cell_blocks(kernel: Frontend) -> None:
    msg_id = kernel.submit("import time\ntime.sleep(60)")
    first = kernel.iopub_for(msg_id, timeout=WAIT)
    assert (first["msg_type"], first["content"].get("execution_state")) == ("status", "busy")
    assert kernel.iopub_for(msg_id, timeout=WAIT)["msg_type"] == "execute_input"
    assert kernel.control("interrupt_request")["content"]["status"] == "ok"
    reply = kernel.shell_reply(msg_id, timeout=WAIT)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    kernel.outputs_until_idle(msg_id, timeout=WAIT)


def test_a_blocking_comm_handler_still_shows_busy(kernel: Frontend) -> None:
    setup, _ = kernel.execute(
        "import threading, time\n"
        "release = threading.Event()\n"
        "def on_open(comm, msg):\n"
        "    release.wait(60)\n"
        "get_ipython().kernel.comm_manager.register_target('blocking_target', on_open)\n")
    assert setup["content"]["status"] == "ok"
    msg_id = kernel.send_shell("comm_open", {"comm_id": "c-blocking", "target_name": "blocking_target",
                                             "data": {}})
    busy = kernel.iopub_for(msg_id, timeout=WAIT)
    assert (busy["msg_type"], busy["content"].get("execution_state")) == ("status", "busy")
    unblock = kernel.submit("# thread\nrelease.set()")  # a thread cell runs while the shell blocks
    kernel.shell_reply(unblock, timeout=WAIT)
    kernel.outputs_until_idle(msg_id, timeout=WAIT)
