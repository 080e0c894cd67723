"""Interactive features over real sockets: stdin, comms and ipywidgets, display, matplotlib.

Each test drives a kernel process through ``tests.harness`` (jupyter_client on real zmq
sockets). Requests that wait for the client (``input()``) are answered on the stdin
channel with an ``input_reply`` whose parent is the kernel's ``input_request``, as a
notebook frontend does. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import queue
import time
from typing import Any

import pytest

from tests.harness import TIMEOUT, Frontend, running_kernel, stdout_of

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def input_request(fe: Frontend, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message on the stdin channel, which must be an ``input_request``."""
    msg = fe.kc.get_stdin_msg(timeout=timeout)
    assert msg["msg_type"] == "input_request", msg
    return msg


def answer(fe: Frontend, request: dict[str, Any], value: str) -> None:
    """Send ``input_reply`` parented to ``request``, so the kernel can match it."""
    fe.kc.stdin_channel.send(fe.kc.session.msg("input_reply", {"value": value}, parent=request))


def outputs_of(fe: Frontend, msg_ids: list[str], timeout: float = TIMEOUT) -> dict[str, list[dict[str, Any]]]:
    """iopub output of several concurrent requests, each until its idle, grouped by request."""
    return {msg_id: fe.outputs_until_idle(msg_id, timeout) for msg_id in msg_ids}


def ok(fe: Frontend, code: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Run ``code``, insist that it succeeds, and return its outputs."""
    reply, outputs = fe.execute(code, **kwargs)
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", errors or reply["content"]
    return outputs


def of_type(outputs: list[dict[str, Any]], msg_type: str) -> list[dict[str, Any]]:
    return [m for m in outputs if m["msg_type"] == msg_type]


# stdin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "password"),
    [("input('name? ')", False), ("__import__('getpass').getpass('name? ')", True)],
    ids=["input", "getpass"],
)
def test_input_request_and_reply(kernel: Frontend, call: str, password: bool) -> None:
    msg_id = kernel.kc.execute(f"answer = {call}\nprint('hello', answer)", allow_stdin=True)
    request = input_request(kernel)
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"] == {"prompt": "name? ", "password": password}
    answer(kernel, request, "trio")
    assert stdout_of(kernel.outputs_until_idle(msg_id)) == "hello trio\n"
    assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"


@pytest.mark.parametrize("call", ["input('x')", "__import__('getpass').getpass('x')"], ids=["input", "getpass"])
def test_stdin_not_allowed(kernel: Frontend, call: str) -> None:
    reply, outputs = kernel.execute(call, allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"
    assert "allow_stdin=False" in reply["content"]["evalue"]
    assert of_type(outputs, "error")


@pytest.mark.parametrize(
    "mode",
    [
        "thread",
        pytest.param(
            "task",
            marks=pytest.mark.xfail(
                strict=True,
                raises=TimeoutError,
                reason="input() blocks the thread it is called on; a task cell shares the shell "
                "loop's thread, so a second task cell cannot start (and ask) until the first "
                "is answered",
            ),
        ),
    ],
)
def test_two_cells_waiting_for_input(kernel: Frontend, mode: str) -> None:
    first = kernel.kc.execute(f"# {mode}\nprint('first got', input('first? '))", allow_stdin=True)
    second = kernel.kc.execute(f"# {mode}\nprint('second got', input('second? '))", allow_stdin=True)
    requests: dict[str, dict[str, Any]] = {}
    answered = 0
    try:
        deadline = time.monotonic() + 3.0
        while len(requests) < 2:
            remaining = deadline - time.monotonic()
            try:
                request = input_request(kernel, timeout=max(remaining, 0.01))
            except queue.Empty:
                raise TimeoutError(f"only {sorted(requests)} asked for input at once") from None
            requests[request["content"]["prompt"]] = request
        assert requests["first? "]["parent_header"]["msg_id"] == first
        assert requests["second? "]["parent_header"]["msg_id"] == second
        # Answer in the opposite order: only the parent header says which is which.
        answer(kernel, requests["second? "], "two")
        answer(kernel, requests["first? "], "one")
        answered = 2
    finally:
        # On failure, answer whatever asks so that both cells end.
        for request in list(requests.values())[answered:]:
            answer(kernel, request, "late")
            answered += 1
        while answered < 2:
            answer(kernel, input_request(kernel), "late")
            answered += 1
    outputs = outputs_of(kernel, [first, second])
    assert stdout_of(outputs[first]) == "first got one\n"
    assert stdout_of(outputs[second]) == "second got two\n"


def test_interrupt_while_waiting_for_input(fresh_kernel: Frontend) -> None:
    fe = fresh_kernel
    msg_id = fe.kc.execute("value = input('never answered')", allow_stdin=True)
    input_request(fe)
    fe.km.interrupt_kernel()
    outputs = fe.outputs_until_idle(msg_id)
    reply = fe.shell_reply(msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert [m["content"]["ename"] for m in of_type(outputs, "error")] == ["KeyboardInterrupt"]
    # Still usable, and input still works.
    assert stdout_of(ok(fe, "print(1 + 1)")) == "2\n"
    msg_id = fe.kc.execute("print(input('again? '))", allow_stdin=True)
    answer(fe, input_request(fe), "yes")
    assert stdout_of(fe.outputs_until_idle(msg_id)) == "yes\n"


# comms and ipywidgets -------------------------------------------------------------------


def comm_info(fe: Frontend, target_name: str | None = None) -> dict[str, Any]:
    content = {} if target_name is None else {"target_name": target_name}
    msg = fe.kc.session.msg("comm_info_request", content)
    fe.kc.shell_channel.send(msg)
    reply = fe.shell_reply(msg["header"]["msg_id"])
    assert reply["content"]["status"] == "ok"
    return reply["content"]["comms"]


def send_comm(fe: Frontend, msg_type: str, content: dict[str, Any]) -> str:
    msg = fe.kc.session.msg(msg_type, content)
    fe.kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def wait_for_value(fe: Frontend, expression: str, expected: str, timeout: float = TIMEOUT) -> None:
    """Poll ``expression`` (via user_expressions) until its text/plain is ``expected``."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        reply, _ = fe.execute("", silent=True, user_expressions={"v": expression})
        seen = reply["content"]["user_expressions"]["v"]["data"]["text/plain"]
        if seen == expected:
            return
    raise AssertionError(f"{expression} is {seen}, expected {expected}")


def open_slider(fe: Frontend, name: str) -> str:
    """Create an ``IntSlider`` called ``name`` with an observer; return its comm id."""
    outputs = ok(
        fe,
        f"import ipywidgets\n{name} = ipywidgets.IntSlider(value=1)\n{name}_seen = []\n"
        f"{name}.observe(lambda change: {name}_seen.append(change['new']), names='value')\n{name}",
    )
    opens = [m["content"] for m in of_type(outputs, "comm_open")
             if m["content"]["data"]["state"].get("_model_name") == "IntSliderModel"]
    assert len(opens) == 1, outputs
    assert opens[0]["target_name"] == "jupyter.widget"
    comm_id = opens[0]["comm_id"]
    (result,) = of_type(outputs, "execute_result")
    assert result["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == comm_id
    return comm_id


def set_value(fe: Frontend, comm_id: str, value: int) -> str:
    return send_comm(fe, "comm_msg", {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"value": value}, "buffer_paths": []},
    })


def test_widget_round_trip(kernel: Frontend) -> None:
    comm_id = open_slider(kernel, "slider")
    assert comm_info(kernel)[comm_id] == {"target_name": "jupyter.widget"}
    assert comm_id in comm_info(kernel, "jupyter.widget")
    assert comm_id not in comm_info(kernel, "no.such.target")

    msg_id = set_value(kernel, comm_id, 7)
    kernel.outputs_until_idle(msg_id)
    assert stdout_of(ok(kernel, "print(slider.value, slider_seen)")) == "7 [7]\n"

    # A change made in the kernel goes out as an ``update`` comm_msg.
    outputs = ok(kernel, "slider.value = 3")
    updates = [m["content"] for m in of_type(outputs, "comm_msg") if m["content"]["comm_id"] == comm_id]
    assert [u["data"]["state"] for u in updates] == [{"value": 3}]

    ok(kernel, "slider.close()")
    assert comm_id not in comm_info(kernel)


def test_comm_close_from_frontend(kernel: Frontend) -> None:
    comm_id = open_slider(kernel, "closed_by_client")
    msg_id = send_comm(kernel, "comm_close", {"comm_id": comm_id, "data": {}})
    kernel.outputs_until_idle(msg_id)
    assert comm_id not in comm_info(kernel)


def test_widget_update_while_a_cell_awaits(kernel: Frontend) -> None:
    comm_id = open_slider(kernel, "busy_slider")
    long_cell = kernel.kc.execute("import trio\nprint('sleeping', flush=True)\nawait trio.sleep(10)")
    try:
        kernel.wait_for_stream(long_cell, "sleeping")
        msg_id = set_value(kernel, comm_id, 42)
        kernel.outputs_until_idle(msg_id, timeout=5.0)
        # Served at once: the silent request runs as a task beside the sleeping cell.
        wait_for_value(kernel, "(busy_slider.value, busy_slider_seen)", "(42, [42])", timeout=5.0)
    finally:
        kernel.km.interrupt_kernel()
        kernel.outputs_until_idle(long_cell)
    ok(kernel, "busy_slider.close()")


# display -----------------------------------------------------------------------------------


def test_display_update_and_clear(kernel: Frontend) -> None:
    outputs = ok(kernel, (
        "from IPython.display import display, clear_output\n"
        "handle = display('first', display_id='d1')\n"
        "handle.update('second')\n"
        "clear_output(wait=True)\n"
        "display({'text/markdown': '**md**', 'text/plain': 'md'}, raw=True)\n"
    ))
    kinds = [m["msg_type"] for m in outputs if m["msg_type"] != "execute_input"]
    assert kinds == ["display_data", "update_display_data", "clear_output", "display_data"]
    first, update, clear, markdown = (m["content"] for m in outputs if m["msg_type"] != "execute_input")
    assert first["data"]["text/plain"] == "'first'"
    assert first["transient"] == {"display_id": "d1"}
    assert update["data"]["text/plain"] == "'second'"
    assert update["transient"] == {"display_id": "d1"}
    assert clear == {"wait": True}
    assert markdown["data"]["text/markdown"] == "**md**"


def test_rich_execute_results(kernel: Frontend) -> None:
    ok(kernel, (
        "import base64\n"
        f"PNG = base64.b64decode({base64.b64encode(PNG_1x1).decode()!r})\n"
        "class Html:\n"
        "    def _repr_html_(self): return '<b>bold</b>'\n"
        "class Png:\n"
        "    def _repr_png_(self): return PNG\n"
        "class Bundle:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'application/json': {'a': 1}, 'text/plain': 'bundle'}, {'application/json': {'x': 1}}\n"
    ))
    expectations = {
        "Html()": ("text/html", "<b>bold</b>"),
        "Png()": ("image/png", base64.b64encode(PNG_1x1).decode()),
        "Bundle()": ("application/json", {"a": 1}),
    }
    for code, (mime, value) in expectations.items():
        reply, outputs = kernel.execute(code)
        (result,) = of_type(outputs, "execute_result")
        content = result["content"]
        assert content["data"][mime] == value, code
        assert "text/plain" in content["data"]
        assert content["execution_count"] == reply["content"]["execution_count"]
    reply, outputs = kernel.execute("Bundle()")
    assert of_type(outputs, "execute_result")[0]["content"]["metadata"] == {"application/json": {"x": 1}}


def test_pager_payload(kernel: Frontend) -> None:
    reply, outputs = kernel.execute("print?")
    assert reply["content"]["status"] == "ok"
    (payload,) = reply["content"]["payload"]
    assert payload["source"] == "page"
    assert "Signature" in payload["data"]["text/plain"]
    assert "print" in payload["data"]["text/plain"]
    assert not of_type(outputs, "stream")


def test_thread_output_goes_to_its_cell(kernel: Frontend) -> None:
    ok(kernel, (
        "import threading\n"
        "from IPython.display import display\n"
        "go = threading.Event()\n"
        "def work():\n"
        "    go.wait(10)\n"
        "    print('from the thread')\n"
        "    display({'text/plain': 'shown by the thread'}, raw=True)\n"
    ))
    starter = kernel.kc.execute("worker = threading.Thread(target=work)\nworker.start()")
    kernel.outputs_until_idle(starter)
    # The thread writes while *another* cell runs; its output still belongs to the starter.
    joiner = kernel.kc.execute("go.set()\nworker.join(10)\nprint('joined')")
    assert stdout_of(kernel.outputs_until_idle(joiner)) == "joined\n"
    # Its messages arrived while the joiner ran; the harness kept them for their parent.
    late = [kernel.iopub_for(starter), kernel.iopub_for(starter)]
    assert [m["msg_type"] for m in late] == ["stream", "display_data"], late
    assert late[0]["content"]["text"] == "from the thread\n"
    assert late[1]["content"]["data"] == {"text/plain": "shown by the thread"}


# matplotlib ----------------------------------------------------------------------------------


def png_displays(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"] for m in of_type(outputs, "display_data") if "image/png" in m["content"]["data"]]


@pytest.mark.parametrize("header", ["", "# task\n"], ids=["queued", "task"])
def test_matplotlib_inline(kernel: Frontend, header: str) -> None:
    outputs = ok(kernel, (
        f"{header}import trio\nimport matplotlib.pyplot as plt\n"
        "await trio.sleep(0)\n"
        "fig, ax = plt.subplots()\nax.plot([1, 3, 2])\nNone"
    ))
    (png,) = png_displays(outputs)
    assert base64.b64decode(png["data"]["image/png"]).startswith(b"\x89PNG")


def test_matplotlib_defaults_to_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MPLBACKEND in its environment the kernel still draws inline."""
    monkeypatch.delenv("MPLBACKEND", raising=False)
    with running_kernel() as fe:
        assert stdout_of(ok(fe, "import matplotlib\nprint(matplotlib.get_backend())")) == (
            "module://matplotlib_inline.backend_inline\n"
        )
        outputs = ok(fe, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nNone")
        assert len(png_displays(outputs)) == 1
