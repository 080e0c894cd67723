"""Output reaches the right cell, in order, and none of it is lost."""

from __future__ import annotations

from kernel._transport.iopub import BATCH_SECONDS, MAX_MESSAGE_BYTES
from tests.harness import Frontend, stdout_of


def test_flood_of_200k_lines_arrives_complete_and_in_order(kernel: Frontend) -> None:
    """Every line, in order, in few messages: the I/O thread sends a flood in batches (at
    most one a ``BATCH_SECONDS``, plus one per 256 KiB), not once per write or per wake-up."""
    msg_id = kernel.submit("import time as _t\n_t0 = _t.monotonic()\n"
                           "for i in range(200_000):\n    print(i)\n"
                           "_flood_s = _t.monotonic() - _t0")
    outputs = kernel.outputs_until_idle(msg_id, timeout=120)
    text = stdout_of(outputs)
    assert text == "".join(f"{i}\n" for i in range(200_000))
    assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"
    _, timing = kernel.execute("print(_flood_s)")
    seconds = float(stdout_of(timing))
    messages = len([m for m in outputs if m["msg_type"] == "stream"])
    batches = seconds / BATCH_SECONDS + len(text) / MAX_MESSAGE_BYTES
    assert messages <= 2 * batches + 8, f"{messages} stream messages in {seconds:.2f} s"


def test_stderr_is_its_own_stream(kernel: Frontend) -> None:
    _, outputs = kernel.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    streams = [(m["content"]["name"], m["content"]["text"]) for m in outputs if m["msg_type"] == "stream"]
    assert streams == [("stdout", "out\n"), ("stderr", "err\n")]


def test_plain_thread_output_reaches_its_cell(kernel: Frontend) -> None:
    code = ("import threading\nfrom IPython.display import display\n"
            "def work():\n    print('from thread')\n    display({'text/plain': 'shown'}, raw=True)\n"
            "t = threading.Thread(target=work)\nt.start()\nt.join()")
    _, outputs = kernel.execute(code)
    assert stdout_of(outputs) == "from thread\n"
    assert [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"] == [{"text/plain": "shown"}]


def test_tasks_started_by_a_cell_print_to_that_cell(kernel: Frontend) -> None:
    code = ("import trio\nasync def child():\n    print('child says hi')\n"
            "async with trio.open_nursery() as n:\n    n.start_soon(child)")
    _, outputs = kernel.execute(code)
    assert stdout_of(outputs) == "child says hi\n"


def test_three_concurrent_cells_print_to_their_own_parents(kernel: Frontend) -> None:
    code = ("# task\nimport trio\nfor i in range(20):\n    print('{name}', i)\n    await trio.sleep(0.005)")
    ids = {name: kernel.submit(code.format(name=name)) for name in ("alpha", "beta", "gamma")}
    for name, msg_id in ids.items():
        text = stdout_of(kernel.outputs_until_idle(msg_id))
        assert text == "".join(f"{name} {i}\n" for i in range(20))
        assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"


def test_display_update_and_clear(kernel: Frontend) -> None:
    code = ("from IPython.display import display, clear_output\n"
            "h = display({'text/plain': 'one'}, raw=True, display_id='d1')\n"
            "h.update({'text/plain': 'two'}, raw=True)\nclear_output(wait=True)")
    _, outputs = kernel.execute(code)
    kinds = [m["msg_type"] for m in outputs if m["msg_type"] != "execute_input"]
    assert kinds == ["display_data", "update_display_data", "clear_output"]
    assert outputs[-1]["content"] == {"wait": True}
    assert outputs[2]["content"]["transient"] == {"display_id": "d1"}


def test_output_is_what_the_object_was_when_displayed(kernel: Frontend) -> None:
    code = ("from IPython.display import display\nd = {'text/plain': 'v0'}\n"
            "for i in range(1, 4):\n    display(d, raw=True)\n    d['text/plain'] = f'v{i}'")
    _, outputs = kernel.execute(code)
    shown = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "display_data"]
    assert shown == ["v0", "v1", "v2"]


def test_unserialisable_output_fails_in_the_cell(kernel: Frontend) -> None:
    reply, _ = kernel.execute("from IPython.display import publish_display_data\n"
                              "publish_display_data({'text/plain': object()})")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "TypeError"
