"""Interrupt reaches every kind of running code, quickly, and the kernel stays usable.

The issue's bounds are 50 ms (awaiting cells), 100 ms (blocking main-thread code) and
200 ms (blocking thread cells), measured from the interrupt request to the execute_reply.
CI machines are shared and slow, so each assertion allows 4x the bound; the benchmark
(``make bench``) reports the real figures.
"""

from __future__ import annotations

import time

import pytest

from tests.harness import Frontend, running_kernel, stdout_of

CI_MARGIN = 4

CASES = {
    "await": ("import trio\nprint('go', flush=True)\ntry:\n    await trio.sleep(60)\n"
              "finally:\n    print('cleanup ran')", 0.05),
    "time.sleep": ("import time\nprint('go', flush=True)\ntime.sleep(60)", 0.1),
    "busy loop": ("print('go', flush=True)\nwhile True:\n    pass", 0.1),
    "busy loop after an await": ("import trio\nprint('go', flush=True)\nif True:\n    await trio.sleep(0)\n"
                                 "    while True:\n        pass", 0.1),
    "thread sleep loop": ("# thread\nimport time\nprint('go', flush=True)\nwhile True:\n    time.sleep(0.02)", 0.2),
    "thread busy loop": ("# thread\nprint('go', flush=True)\nwhile True:\n    pass", 0.2),
    "thread await": ("# thread\nimport trio\nprint('go', flush=True)\nawait trio.sleep(60)", 0.05),
    "task await": ("# task\nimport trio\nprint('go', flush=True)\nawait trio.sleep(60)", 0.05),
    "task busy loop": ("# task\nprint('go', flush=True)\nwhile True:\n    pass", 0.1),
}


def _interrupt_latency(kernel: Frontend, code: str) -> tuple[float, dict]:
    msg_id = kernel.submit(code)
    kernel.wait_for_stream(msg_id, "go")
    start = time.perf_counter()
    kernel.control("interrupt_request")
    reply = kernel.shell_reply(msg_id)
    return time.perf_counter() - start, reply


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_every_mode(kernel: Frontend, case: str) -> None:
    code, bound = CASES[case]
    latency, reply = _interrupt_latency(kernel, code)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert latency < bound * CI_MARGIN, f"{case}: {latency * 1000:.0f} ms"
    _, outputs = kernel.execute("print('still usable')")
    assert stdout_of(outputs) == "still usable\n"


def test_cancelled_await_runs_its_finally(kernel: Frontend) -> None:
    msg_id = kernel.submit(CASES["await"][0])
    kernel.wait_for_stream(msg_id, "go")
    kernel.control("interrupt_request")
    kernel.wait_for_stream(msg_id, "cleanup ran")
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"


def test_interrupt_with_nothing_running_is_harmless(kernel: Frontend) -> None:
    assert kernel.control("interrupt_request")["content"]["status"] == "ok"
    reply, _ = kernel.execute("1")
    assert reply["content"]["status"] == "ok"


def test_queued_requests_behind_an_interrupted_cell_are_aborted(kernel: Frontend) -> None:
    msg_id = kernel.submit("import time\nprint('go', flush=True)\ntime.sleep(60)")
    queued = kernel.submit("print('never')")
    kernel.wait_for_stream(msg_id, "go")
    kernel.control("interrupt_request")
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"
    assert kernel.shell_reply(queued)["content"]["status"] == "aborted"


def test_control_answers_while_main_thread_spins(kernel: Frontend) -> None:
    msg_id = kernel.submit("print('go', flush=True)\nwhile True:\n    pass")
    kernel.wait_for_stream(msg_id, "go")
    start = time.perf_counter()
    info = kernel.control("kernel_info_request")
    elapsed = time.perf_counter() - start
    assert info["content"]["implementation"] == "trio-kernel"
    assert elapsed < 0.1 * CI_MARGIN, f"kernel_info took {elapsed * 1000:.0f} ms"
    start = time.perf_counter()
    complete = kernel.shell_reply(kernel.send_shell("complete_request", {"code": "pri", "cursor_pos": 3}))
    assert "print" in complete["content"]["matches"]
    assert time.perf_counter() - start < 0.2 * CI_MARGIN
    kernel.control("interrupt_request")
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"


def test_signal_interrupt_mode() -> None:
    with running_kernel() as frontend:
        frontend.km.kernel_spec.interrupt_mode = "signal"
        for code in (CASES["await"][0], CASES["time.sleep"][0], CASES["busy loop"][0],
                     CASES["thread sleep loop"][0]):
            msg_id = frontend.submit(code)
            frontend.wait_for_stream(msg_id, "go")
            frontend.km.interrupt_kernel()
            reply = frontend.shell_reply(msg_id)
            assert reply["content"]["ename"] == "KeyboardInterrupt", code
        reply, outputs = frontend.execute("print('alive')")
        assert stdout_of(outputs) == "alive\n"
