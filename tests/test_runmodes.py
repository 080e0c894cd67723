"""Run modes, cell options and subshells over real sockets."""

from __future__ import annotations

import time

import pytest

from tests.harness import Frontend, stdout_of
from tests.test_interrupt import CI_MARGIN


def test_task_cell_replies_while_the_queued_cell_still_waits(kernel: Frontend) -> None:
    """What makes a task a task: it starts and replies while the queued cell runs."""
    kernel.execute("import trio\nqueued_gate = trio.Event()")
    queued = kernel.submit("print('go', flush=True)\nwith trio.fail_after(20):\n    await queued_gate.wait()")
    kernel.wait_for_stream(queued, "go")
    task = kernel.submit("# task\nprint('task ran')")
    assert kernel.shell_reply(task, timeout=10)["content"]["status"] == "ok", "the task waited for the queue"
    assert stdout_of(kernel.outputs_until_idle(task)) == "task ran\n"
    assert not kernel.has_reply(queued), "the queued cell cannot have ended: nothing released it yet"
    kernel.execute("# task\nqueued_gate.set()")
    assert kernel.shell_reply(queued)["content"]["status"] == "ok"


def test_thread_cell_starts_while_a_queued_cell_blocks_the_main_thread(kernel: Frontend) -> None:
    """A thread cell is started by the I/O thread: the queued cell blocks the main thread on
    an event that only the thread cell sets, so it can only finish if the thread cell ran."""
    kernel.execute("import threading, time\nthread_gate = threading.Event()")
    queued = kernel.submit("print('go', flush=True)\nassert thread_gate.wait(15), 'the thread cell never started'\n"
                           "print('released')")
    kernel.wait_for_stream(queued, "go")
    sent = time.monotonic()
    thread = kernel.submit(f"# thread\nstarted_after = time.monotonic() - {sent!r}\nthread_gate.set()")
    assert kernel.shell_reply(thread, timeout=10)["content"]["status"] == "ok"
    assert kernel.shell_reply(queued)["content"]["status"] == "ok"
    _, outputs = kernel.execute("print(started_after)")
    started_after = float(stdout_of(outputs))
    print(f"thread cell started {started_after * 1000:.1f} ms after it was sent")
    assert started_after < 0.05 * CI_MARGIN


def test_thread_cell_runs_off_the_shell_thread_and_can_await(kernel: Frontend) -> None:
    code = ("# thread\nimport threading, trio\nawait trio.sleep(0.01)\n"
            "print(threading.current_thread() is threading.main_thread())")
    reply, outputs = kernel.execute(code)
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == "False\n"


def test_queue_runs_in_arrival_order(kernel: Frontend) -> None:
    kernel.execute("order = []")
    ids = [kernel.submit(f"import trio\nawait trio.sleep({0.05 * (3 - i)})\norder.append({i})") for i in range(3)]
    for msg_id in ids:
        assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"
    _, outputs = kernel.execute("print(order)")
    assert stdout_of(outputs) == "[0, 1, 2]\n"


def test_blocking_cell_runs_alone(kernel: Frontend) -> None:
    """Requests after a blocking cell start only when it ends. The blocking cell is released
    from a subshell (same namespace) after the task and thread cells were sent on the same
    socket, so a kernel that let them start would have started them first."""
    kernel.execute("import threading\nblocking_release = threading.Event()\nblocking_done = False\nseen = []")
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    try:
        blocking = kernel.submit("# blocking\nimport trio\nprint('go', flush=True)\n"
                                 "assert await trio.to_thread.run_sync(blocking_release.wait, 15)\n"
                                 "blocking_done = True")
        kernel.wait_for_stream(blocking, "go")
        task = kernel.submit("# task\nseen.append(('task', blocking_done))")
        thread = kernel.submit("# thread\nseen.append(('thread', blocking_done))")
        queued = kernel.submit("seen.append(('queue', blocking_done))")
        release = kernel.submit("blocking_release.set()", subshell_id=subshell)
        assert kernel.shell_reply(release)["content"]["status"] == "ok"
        for msg_id in (blocking, task, thread, queued):
            assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"
        _, outputs = kernel.execute("print(sorted(seen))")
        assert stdout_of(outputs) == "[('queue', True), ('task', True), ('thread', True)]\n"
    finally:
        kernel.control("delete_subshell_request", {"subshell_id": subshell})


def test_blocking_cell_waits_for_the_queue(kernel: Frontend) -> None:
    """A blocking cell starts once the queued cells before it have ended (and everything
    after it waits too, so the queued cell is released from a subshell)."""
    kernel.execute("import threading, trio\nqueue_gate = threading.Event()\nevents = []")
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    try:
        queued = kernel.submit("print('go', flush=True)\nassert await trio.to_thread.run_sync(queue_gate.wait, 15)\n"
                               "events.append('queued')")
        kernel.wait_for_stream(queued, "go")
        blocking = kernel.submit("# blocking\nevents.append('blocking')")
        assert kernel.shell_reply(kernel.submit("queue_gate.set()", subshell_id=subshell))["content"]["status"] == "ok"
        assert kernel.shell_reply(queued)["content"]["status"] == "ok"
        assert kernel.shell_reply(blocking)["content"]["status"] == "ok"
        _, outputs = kernel.execute("print(events)")
        assert stdout_of(outputs) == "['queued', 'blocking']\n"
    finally:
        kernel.control("delete_subshell_request", {"subshell_id": subshell})


def test_tags_select_the_mode(kernel: Frontend) -> None:
    kernel.execute("import trio\ntag_gate = trio.Event()")
    queued = kernel.submit("print('go', flush=True)\nwith trio.fail_after(15):\n    await tag_gate.wait()")
    kernel.wait_for_stream(queued, "go")
    tagged = kernel.submit("print('tagged task')\ntag_gate.set()", tags=["task"])
    assert stdout_of(kernel.outputs_until_idle(tagged)) == "tagged task\n"
    assert kernel.shell_reply(queued)["content"]["status"] == "ok"


@pytest.mark.parametrize("code", [
    "# timeout=0.2\nimport trio\nawait trio.sleep(30)",
    "# timeout=0.2\nimport time\ntime.sleep(30)",
    "# thread timeout=0.2\nwhile True:\n    pass",
])
def test_timeout_option(kernel: Frontend, code: str) -> None:
    reply, outputs = kernel.execute(code)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "TimeoutError"
    assert "0.2 s" in reply["content"]["evalue"]
    errors = [m["content"]["ename"] for m in outputs if m["msg_type"] == "error"]
    assert errors == ["TimeoutError"], "one error, the timeout, not a KeyboardInterrupt too"


def test_timeout_tag(kernel: Frontend) -> None:
    msg_id = kernel.submit("import trio\nawait trio.sleep(30)", tags=["timeout=0.2"])
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "TimeoutError"


def test_raises_exception_is_ok_and_keeps_the_queue(kernel: Frontend) -> None:
    failing = kernel.submit("raise ValueError('expected')", tags=["raises-exception"])
    after = kernel.submit("print('next')")
    reply = kernel.shell_reply(failing)
    assert reply["content"]["status"] == "ok"
    assert kernel.shell_reply(after)["content"]["status"] == "ok"


def test_suppress_error_shows_the_error_but_replies_ok(kernel: Frontend) -> None:
    reply, outputs = kernel.execute("# suppress-error\n1/0")
    assert reply["content"]["status"] == "ok"
    assert any(m["msg_type"] == "error" for m in outputs)


def test_runmode_magic_changes_the_default(kernel: Frontend) -> None:
    _, outputs = kernel.execute("%runmode task")
    assert stdout_of(outputs) == "default run mode: task\n"
    try:
        kernel.execute("import trio\nmagic_gate = trio.Event()")
        queued = kernel.submit("# queue\nprint('go', flush=True)\nwith trio.fail_after(15):\n"
                               "    await magic_gate.wait()")
        kernel.wait_for_stream(queued, "go")
        default = kernel.submit("print('default is task')\nmagic_gate.set()")
        assert stdout_of(kernel.outputs_until_idle(default)) == "default is task\n"
        assert kernel.shell_reply(queued)["content"]["status"] == "ok"
    finally:
        kernel.execute("%runmode queue")
    reply, _ = kernel.execute("%runmode sideways")
    assert reply["content"]["ename"] == "UsageError"


def test_stop_on_error_cancels_running_tasks_that_asked_for_it(kernel: Frontend) -> None:
    task = kernel.submit("# task\nimport trio\nprint('go', flush=True)\nawait trio.sleep(30)")
    kernel.wait_for_stream(task, "go")
    reply, _ = kernel.execute("1/0")
    assert reply["content"]["status"] == "error"
    assert kernel.shell_reply(task)["content"]["ename"] == "KeyboardInterrupt"


def test_subshell_answers_while_the_main_shell_blocks(kernel: Frontend) -> None:
    kernel_info = kernel.control("kernel_info_request")
    assert "kernel subshells" in kernel_info["content"]["supported_features"]
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    try:
        assert kernel.control("list_subshell_request")["content"]["subshell_id"] == [subshell]
        main = kernel.submit("import time\nprint('go', flush=True)\ntime.sleep(3)")
        kernel.wait_for_stream(main, "go")
        sub = kernel.submit("print('from the subshell', 6 * 7)", subshell_id=subshell)
        reply = kernel.shell_reply(sub, timeout=2)
        assert reply["content"]["status"] == "ok"
        assert reply["header"]["subshell_id"] == subshell
        assert stdout_of(kernel.outputs_until_idle(sub)) == "from the subshell 42\n"
        kernel.control("interrupt_request")
        assert kernel.shell_reply(main)["content"]["ename"] == "KeyboardInterrupt"
    finally:
        kernel.control("delete_subshell_request", {"subshell_id": subshell})
    assert kernel.control("list_subshell_request")["content"]["subshell_id"] == []


def test_deleting_a_busy_subshell_stops_its_work_and_thread(kernel: Frontend) -> None:
    _, outputs = kernel.execute("import threading\nprint(threading.active_count())")
    threads_before = int(stdout_of(outputs))
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    busy = kernel.submit("import time\nprint('go', flush=True)\nwhile True:\n    time.sleep(0.01)",
                         subshell_id=subshell)
    kernel.wait_for_stream(busy, "go")
    assert kernel.control("delete_subshell_request", {"subshell_id": subshell})["content"]["status"] == "ok"
    assert kernel.shell_reply(busy)["content"]["ename"] == "KeyboardInterrupt"
    _, outputs = kernel.execute("print(threading.active_count())")
    assert int(stdout_of(outputs)) == threads_before


def test_interrupt_reaches_subshell_cells(kernel: Frontend) -> None:
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    try:
        busy = kernel.submit("print('go', flush=True)\nwhile True:\n    pass", subshell_id=subshell)
        kernel.wait_for_stream(busy, "go")
        kernel.control("interrupt_request")
        assert kernel.shell_reply(busy)["content"]["ename"] == "KeyboardInterrupt"
    finally:
        kernel.control("delete_subshell_request", {"subshell_id": subshell})


def test_unknown_subshell_gets_an_error(kernel: Frontend) -> None:
    msg_id = kernel.submit("1", subshell_id="no-such-subshell")
    reply = kernel.shell_reply(msg_id)
    assert reply["content"]["status"] == "error"
    delete = kernel.control("delete_subshell_request", {"subshell_id": "no-such-subshell"})
    assert delete["content"]["status"] == "error"


def test_kernel_reads_busy_while_any_cell_runs(kernel: Frontend) -> None:
    kernel.execute("import trio\nbusy_gate = trio.Event()")
    task = kernel.submit("# task\nprint('go', flush=True)\nwith trio.fail_after(15):\n    await busy_gate.wait()")
    kernel.wait_for_stream(task, "go")
    quick = kernel.submit("1 + 1")
    kernel.outputs_until_idle(quick)
    # Right after the quick cell's idle comes a busy for the task still running.
    follow_up = kernel.iopub_for(task)
    while follow_up["msg_type"] != "status":
        follow_up = kernel.iopub_for(task)
    assert follow_up["content"]["execution_state"] == "busy"
    kernel.execute("# task\nbusy_gate.set()")
    kernel.outputs_until_idle(task)
    assert kernel.shell_reply(task)["content"]["status"] == "ok"
