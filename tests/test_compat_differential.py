"""The same cells on ``trio`` and on ``python3`` (ipykernel), in one run: same behaviour.

Each test runs its cells on both kernels (one of each for the module) and compares what a
user sees, normalised by ``tests._normalise``: reply status, outputs, comm traffic. Where
trio-kernel deliberately differs (``%autoawait`` names trio), the test says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import _normalise as norm
from tests.harness import Frontend, running_kernel, stdout_of

KERNELS = ("trio", "python3")


@pytest.fixture(scope="module")
def kernels() -> Iterator[dict[str, Frontend]]:
    # ipykernel turns its fd capture off when it sees PYTEST_CURRENT_TEST; users have it on.
    with running_kernel("trio") as trio_kernel, \
            running_kernel("python3", env_drop=("PYTEST_CURRENT_TEST",)) as ipy_kernel:
        yield {"trio": trio_kernel, "python3": ipy_kernel}


Run = tuple[dict[str, Any], list[dict[str, Any]]]


def run_both(kernels: dict[str, Frontend], code: str, **kwargs: Any) -> dict[str, Run]:
    return {name: kernels[name].execute(code, **kwargs) for name in KERNELS}


def seen(run: Run) -> dict[str, Any]:
    """What a user sees of one execution: reply status and normalised outputs."""
    reply, outputs = run
    visible = [norm.iopub(m) for m in outputs if m["msg_type"] != "execute_input"]
    return {"status": reply["content"]["status"], "outputs": norm.merge_streams(visible)}


def assert_same(runs: dict[str, Run]) -> dict[str, Any]:
    trio_seen, ipy_seen = seen(runs["trio"]), seen(runs["python3"])
    assert trio_seen == ipy_seen
    return trio_seen


def printed(kernels: dict[str, Frontend], code: str) -> dict[str, str]:
    """stdout of ``code`` on each kernel (asserting both replied ok)."""
    result = {}
    for name, (reply, outputs) in run_both(kernels, code).items():
        assert reply["content"]["status"] == "ok", (name, outputs)
        result[name] = stdout_of(outputs)
    return result


# --- get_ipython().kernel ------------------------------------------------------------

def test_kernel_parent_is_the_running_request(kernels: dict[str, Frontend]) -> None:
    for name in KERNELS:
        frontend = kernels[name]
        msg_id = frontend.kc.execute(
            "k = get_ipython().kernel\n"
            "print(k.get_parent()['header']['msg_id'], k._parent_header['header']['msg_id'],"
            " get_ipython().get_parent()['header']['msg_id'], k._allow_stdin, k.shell is get_ipython(),"
            " k.comm_manager is not None, type(k.execution_count).__name__)")
        outputs = frontend.outputs_until_idle(msg_id)
        assert frontend.shell_reply(msg_id)["content"]["status"] == "ok"
        words = stdout_of(outputs).split()
        assert words == [msg_id, msg_id, msg_id, "True", "True", "True", "int"], name  # allow_stdin=True


def test_session_send_on_iopub_socket_reaches_the_cell(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, (
        "k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, 'display_data',"
        " {'data': {'text/plain': 'sent by session'}, 'metadata': {}, 'transient': {}},"
        " parent=k.get_parent())\n"
        "k.send_response(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'via send_response\\n'});"))
    assert_same(runs)
    for reply, outputs in runs.values():
        sent_ids = [m["header"]["msg_id"] for m in outputs if m["msg_type"] == "display_data"]
        assert len(sent_ids) == 1 and sent_ids[0]  # a well-formed header (checked by msgspec too)
        parents = {m["parent_header"]["msg_id"] for m in outputs}
        assert parents == {reply["parent_header"]["msg_id"]}
        assert [m["msg_type"] for m in outputs if m["msg_type"] != "execute_input"] == ["display_data", "stream"]


def test_session_send_returns_the_message_it_sent(kernels: dict[str, Frontend]) -> None:
    for name in KERNELS:
        _reply, outputs = kernels[name].execute(
            "k = get_ipython().kernel\n"
            "sent = k.session.send(k.iopub_socket, 'display_data', {'data': {'text/plain': 'x'}, 'metadata': {}},"
            " parent=k.get_parent())\n"
            "print(sent['header']['msg_id'])")
        [display] = [m for m in outputs if m["msg_type"] == "display_data"]
        assert stdout_of(outputs).strip() == display["header"]["msg_id"], name


def test_parent_of_task_and_thread_cells_is_their_own(kernels: dict[str, Frontend]) -> None:
    """trio only (ipykernel has no concurrent cells): two cells running at once each see
    their own request as the parent, also from a thread the cell started."""
    frontend = kernels["trio"]
    code = ("# {mode}\nimport trio, threading\nawait trio.sleep(0.2)\n"
            "def from_a_thread():\n"
            "    seen = []\n"
            "    t = threading.Thread(target=lambda: seen.append(get_ipython().kernel.get_parent()))\n"
            "    t.start(); t.join()\n"
            "    return seen[0]['header']['msg_id']\n"
            "print(get_ipython().kernel.get_parent()['header']['msg_id'], from_a_thread())")
    ids = [frontend.submit(code.format(mode="task")), frontend.submit(code.format(mode="thread"))]
    for msg_id in ids:
        outputs = frontend.outputs_until_idle(msg_id)
        assert frontend.shell_reply(msg_id)["content"]["status"] == "ok"
        assert stdout_of(outputs).split() == [msg_id, msg_id]


# --- libraries detect a notebook -------------------------------------------------------

def test_libraries_detect_a_notebook(kernels: dict[str, Frontend]) -> None:
    result = printed(kernels, (
        "import rich.console, tqdm.auto, tqdm.notebook, pandas, plotly.io\n"
        "print(rich.console.Console().is_jupyter)\n"
        "print(issubclass(tqdm.auto.tqdm, tqdm.notebook.tqdm_notebook))\n"
        "print(pandas.get_option('display.max_columns'))\n"
        "print(plotly.io.renderers.default)\n"
        "print('IPKernelApp' in get_ipython().config, type(get_ipython()).__name__)\n"
        "print('zmqshell' in str(type(get_ipython())), 'zmq' in str(type(get_ipython())).lower())"))
    assert result["trio"] == result["python3"]
    assert result["trio"].split("\n")[:4] == ["True", "True", "20", "plotly_mimetype"]


def test_tqdm_auto_draws_a_widget_bar(kernels: dict[str, Frontend]) -> None:
    models = {}
    for name in KERNELS:
        reply, outputs = kernels[name].execute("from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass")
        assert reply["content"]["status"] == "ok", name
        models[name] = sorted(m["content"]["data"]["state"]["_model_name"] for m in outputs
                              if m["msg_type"] == "comm_open")
    assert models["trio"] == models["python3"]
    assert "FloatProgressModel" in models["trio"]


def test_environment_for_subprocesses(kernels: dict[str, Frontend]) -> None:
    result = printed(kernels, "import os\nfor k in ('TERM', 'CLICOLOR', 'FORCE_COLOR', 'CLICOLOR_FORCE', 'PAGER',"
                              " 'GIT_PAGER'):\n    print(k, os.environ.get(k))")
    assert result["trio"] == result["python3"]


def test_rich_renders_html_and_wide_frames_are_not_truncated(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, (
        "import rich, pandas\n"
        "rich.print('[bold]hi[/bold]')\n"
        "pandas.DataFrame([[i * j for i in range(15)] for j in range(3)], columns=[f'column_{i}' for i in range(15)])"))
    outputs = assert_same(runs)["outputs"]
    assert "text/html" in outputs[0]["data"] and "column_14" in outputs[-1]["data"]["text/plain"]


# --- ipywidgets Output -----------------------------------------------------------------

def _widget_traffic(run: Run) -> list[dict[str, Any]]:
    """Output widget updates (msg_id set and cleared) and what the cell printed, in order."""
    _reply, outputs = run
    seen_msgs = []
    for m in outputs:
        if m["msg_type"] == "comm_msg":
            state = m["content"]["data"].get("state", {})
            if "msg_id" in state:
                seen_msgs.append({"msg_id_set": bool(state["msg_id"]),
                                  "is_this_cell": state["msg_id"] == m["parent_header"]["msg_id"]})
        elif m["msg_type"] in ("stream", "error", "clear_output"):
            seen_msgs.append(norm.iopub(m))
    return norm.merge_streams(seen_msgs)


@pytest.mark.parametrize("cell", [
    "with out:\n    print('inside')\nprint('outside')",
    "with out:\n    print('before')\n    out.clear_output()\n    print('after')",
    "@out.capture()\ndef f():\n    print('captured')\n    raise ValueError('in the widget')\nf()\nprint('went on')",
    "@out.capture(clear_output=True)\ndef g():\n    print('cleared first')\ng()",
])
def test_output_widget_captures(kernels: dict[str, Frontend], cell: str) -> None:
    for name in KERNELS:
        reply, _ = kernels[name].execute("from ipywidgets import Output\nout = Output()\ndisplay(out)")
        assert reply["content"]["status"] == "ok", name
    runs = run_both(kernels, cell)
    assert {name: run[0]["content"]["status"] for name, run in runs.items()} == {"trio": "ok", "python3": "ok"}
    traffic = {name: _widget_traffic(run) for name, run in runs.items()}
    assert traffic["trio"] == traffic["python3"]
    assert traffic["trio"][0] == {"msg_id_set": True, "is_this_cell": True}


def test_interactive_output_updates_go_to_the_widget(kernels: dict[str, Frontend]) -> None:
    code = ("import ipywidgets as w\n"
            "s = w.IntSlider(value=1)\n"
            "def show(x):\n    print('x is', x)\n"
            "o = w.interactive_output(show, {'x': s})\n"
            "display(o)")
    runs = run_both(kernels, code)
    traffic = {name: _widget_traffic(run) for name, run in runs.items()}
    assert traffic["trio"] == traffic["python3"]
    assert {"output_type": "stream", "name": "stdout", "text": "x is 1\n"} in traffic["trio"]


def test_moving_a_slider_updates_interactive_output_in_the_widget(kernels: dict[str, Frontend]) -> None:
    """The frontend moves the slider (a ``comm_msg``): the observer's output is parented to
    that comm_msg and the Output widget's ``msg_id`` names it, so it lands in the widget."""
    traffic = {}
    for name in KERNELS:
        frontend = kernels[name]
        _reply, outputs = frontend.execute(
            "import ipywidgets as w\nslider = w.IntSlider(value=1)\n"
            "def report(x):\n    print('x is', x)\n"
            "display(w.interactive_output(report, {'x': slider}))\nprint(slider.model_id)")
        model_id = stdout_of(outputs).split()[-1]
        msg = frontend.kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
            "method": "update", "state": {"value": 5}, "buffer_paths": []}})
        frontend.kc.shell_channel.send(msg)
        moved = frontend.outputs_until_idle(msg["header"]["msg_id"])
        traffic[name] = _widget_traffic((msg, moved))
    assert traffic["trio"] == traffic["python3"]
    assert {"msg_id_set": True, "is_this_cell": True} in traffic["trio"]
    assert {"output_type": "stream", "name": "stdout", "text": "x is 5\n"} in traffic["trio"]


# --- logging ---------------------------------------------------------------------------

def test_root_logger_belongs_to_the_user(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, (
        "import logging\n"
        "logging.getLogger('x').warning('a warning')\n"
        "logging.getLogger('x').info('not shown yet')\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s %(message)s', force=True)\n"
        "logging.getLogger('y').info('shown now')"))
    outputs = assert_same(runs)["outputs"]
    assert outputs == [{"output_type": "stream", "name": "stderr", "text": "a warning\nINFO y shown now\n"}]


# --- fd-level output -------------------------------------------------------------------

def test_fd_output_reaches_the_cell(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, (
        "import os, ctypes, subprocess, sys\n"
        "os.system('echo from a subprocess; echo to stderr >&2')\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.printf(b'from printf\\n'); libc.fflush(None)\n"
        "os.write(1, b'from write(1)\\n')\n"
        "subprocess.run([sys.executable, '-c', 'print(\"from a child\")'])\n"
        "print('from print')"))
    for name, (reply, outputs) in runs.items():
        assert reply["content"]["status"] == "ok"
        out = stdout_of(outputs)
        if name == "python3":  # ipykernel forwards fd output asynchronously: it may come after idle
            out = _late_stdout(kernels[name], reply["parent_header"]["msg_id"], out, "from a child")
        expected = ["from a subprocess", "from printf", "from write(1)", "from a child", "from print"]
        if name == "python3":  # its forwarding thread races the cell's own print: order varies
            assert sorted(out.splitlines()) == sorted(expected), name
        else:  # ours empties the pipes before each write that follows a pause: written order
            assert out.splitlines() == expected, name
        assert "to stderr" in "".join(m["content"]["text"] for m in outputs
                                      if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")


def _late_stdout(frontend: Frontend, msg_id: str, out: str, last: str) -> str:
    """``out`` plus stdout of ``msg_id`` that arrives after its idle, until ``last`` is seen."""
    while last not in out:
        msg = frontend.iopub_for(msg_id, timeout=10)
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out += msg["content"]["text"]
    return out


# --- magics and helpers ----------------------------------------------------------------

def test_autoawait_reports_the_loop(kernels: dict[str, Frontend]) -> None:
    """Deliberately different: trio-kernel names its own loop."""
    result = printed(kernels, "%autoawait")
    assert result["python3"] == "IPython autoawait is `on`, and set to use `asyncio`\n"
    assert result["trio"] == "IPython autoawait is `on`, and set to use `trio` (the kernel's own loop)\n"


def test_store_magic(kernels: dict[str, Frontend]) -> None:
    for name in KERNELS:
        kernels[name].execute("%store -z")
    runs = run_both(kernels, "stored_value = 42\n%store stored_value\ndel stored_value\n"
                             "%store -r stored_value\nstored_value")
    outputs = assert_same(runs)["outputs"]
    assert outputs[-1]["data"]["text/plain"] == "42"


def test_quit_keep_kernel_payload(kernels: dict[str, Frontend]) -> None:
    payloads = {name: reply["content"]["payload"] for name, (reply, _) in
                run_both(kernels, "quit(keep_kernel=True)").items()}
    assert payloads["trio"] == payloads["python3"] == [{"source": "ask_exit", "keepkernel": True}]


def test_sys_exit_shows_the_exit_hint(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, "import sys; sys.exit(3)")
    for reply, outputs in runs.values():
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "SystemExit"
        stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
        assert "To exit: use 'exit', 'quit', or Ctrl-D." in stderr


def test_xmode_plain_shows_the_cell_frame(kernels: dict[str, Frontend]) -> None:
    traceback = {}
    for name in KERNELS:
        kernels[name].execute("%xmode plain")
        reply, outputs = kernels[name].execute("def inner():\n    1/0\ninner()")
        kernels[name].execute("%xmode context")
        assert reply["content"]["status"] == "error"
        [error] = [m for m in outputs if m["msg_type"] == "error"]
        lines = norm.text("\n".join(error["content"]["traceback"])).splitlines()
        traceback[name] = [norm.ANSI.sub("", line).split(",")[1].strip() if line.lstrip().startswith("Cell") else line
                           for line in lines]
    assert traceback["trio"] == traceback["python3"]
    assert sum("line 3" in line for line in traceback["trio"]) == 1  # the cell's own frame


def test_kernel_magics(kernels: dict[str, Frontend], tmp_path: Path) -> None:
    """ipykernel's own magics: %autosave (notebooks carry it), %less, %more, %clear."""
    source = tmp_path / "shown.py"
    source.write_text("x = 1\n")
    bad = {name: seen(run) for name, run in run_both(kernels, "%autosave soon").items()}
    # A UsageError is an error output here, stderr text under ipykernel (README, known differences).
    assert bad["trio"]["status"] == bad["python3"]["status"] == "error"
    assert bad["python3"]["outputs"][0]["text"] == f"UsageError: {bad['trio']['outputs'][0]['evalue']}\n"
    for cell in ("%autosave 0", "%autosave 120", f"%less {source}", f"%more {source}"):
        runs = run_both(kernels, cell)
        assert_same(runs)
        payloads = {name: run[0]["content"].get("payload") for name, run in runs.items()}
        assert norm.comm_data(payloads["trio"]) == norm.comm_data(payloads["python3"]), cell
    assert {name: run[0]["content"]["status"] for name, run in run_both(kernels, "%clear").items()} == {
        "trio": "ok", "python3": "ok"}


def test_connect_info_and_qtconsole_do_not_fail(kernels: dict[str, Frontend]) -> None:
    for magic in ("%connect_info", "%qtconsole"):
        runs = run_both(kernels, magic)
        assert {name: run[0]["content"]["status"] for name, run in runs.items()} == {"trio": "ok", "python3": "ok"}
    info = stdout_of(kernels["trio"].execute("%connect_info")[1])
    assert json.loads(info.split("\n\n")[0])["shell_port"] == kernels["trio"].km.shell_port


# --- robust rich output ----------------------------------------------------------------

def test_failing_repr_html_shows_the_plain_repr(kernels: dict[str, Frontend]) -> None:
    """Deliberately different reply: ipykernel 7 answers ``error`` (ename ``NoneType``)
    for a cell that ran without error; trio-kernel answers ``ok``. Outputs are the same."""
    runs = run_both(kernels, "class A:\n    def _repr_html_(self):\n        raise ValueError('boom')\nA()")
    trio_seen, ipy_seen = seen(runs["trio"]), seen(runs["python3"])
    assert trio_seen["outputs"] == ipy_seen["outputs"]
    assert [o["output_type"] for o in trio_seen["outputs"]] == ["error", "execute_result"]
    assert trio_seen["status"] == "ok"


def test_lone_surrogates_become_replacement_characters(kernels: dict[str, Frontend]) -> None:
    for code in ("import os\nprint(os.fsdecode(b'name-\\xff'))",
                 "import os\nraise ValueError(os.fsdecode(b'bad-\\xff'))",
                 "import os\nos.fsdecode(b'result-\\xff')"):
        assert_same(run_both(kernels, code))
    _reply, outputs = kernels["trio"].execute("import os\nprint(os.fsdecode(b'name-\\xff'))")
    assert stdout_of(outputs) == "name-\ufffd\n"


# --- matplotlib ------------------------------------------------------------------------

def test_matplotlib_widget_opens_an_ipympl_canvas(kernels: dict[str, Frontend]) -> None:
    runs = run_both(kernels, "%matplotlib widget\nimport matplotlib.pyplot as plt\n"
                             "fig = plt.figure(); plt.plot([1, 2])")
    for name, (reply, outputs) in runs.items():
        assert reply["content"]["status"] == "ok", name
        models = [m["content"]["data"]["state"].get("_model_name") for m in outputs if m["msg_type"] == "comm_open"]
        assert "MPLCanvasModel" in models, name
    for name in KERNELS:
        kernels[name].execute("%matplotlib inline")


def test_matplotlib_notebook_refuses_without_switching() -> None:
    with running_kernel("trio") as frontend:
        reply, outputs = frontend.execute("%matplotlib notebook")
        assert reply["content"]["status"] == "error"
        assert "%matplotlib widget" in reply["content"]["evalue"]
        [error] = [m for m in outputs if m["msg_type"] == "error"]
        assert error["content"]["ename"] == "UsageError"
        reply, outputs = frontend.execute("import matplotlib; print(matplotlib.get_backend())")
        assert "inline" in stdout_of(outputs)
