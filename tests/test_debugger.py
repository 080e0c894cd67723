"""The JupyterLab visual debugger: a client speaking the debug protocol as JupyterLab does.

The end-to-end tests drive a real kernel over zmq: ``debug_request`` on control, replies on
control, ``debug_event`` on iopub. Every wait has a timeout; synchronisation is by messages
(the ``stopped`` event, the execute_reply), never by sleeping. The pure layers (DAP framing,
cell file names) are tested synchronously below them.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import wait_all_tasks_blocked

from kernel._debugger import cells
from kernel._debugger.dap import DAPBuffer, DAPError, frame
from kernel._debugger.gate import ResumeGate, reads_frames
from tests.harness import Frontend, running_kernel

TIMEOUT = 30.0

CELL = """\
def add(a, b):
    total = a + b
    return total

x = 40
y = add(x, 2)
print("result", y)
"""
BREAK_LINE = 3  # ``return total``: ``total`` is a local of ``add`` when stopped there


# -- pure layers -------------------------------------------------------------------------

@given(st.text(max_size=40), st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_murmur2_matches_ipykernel(code: str, seed: int) -> None:
    """ipykernel's hash is what JupyterLab is known to agree with; ours must match it."""
    compiler = pytest.importorskip("ipykernel.compiler")
    assert cells.murmur2(code.encode("utf-8"), seed) == compiler.murmur2_x86(code, seed)


def test_cell_path_uses_prefix_and_suffix() -> None:
    path = cells.cell_path("print(1)\n")
    assert path.startswith(cells.prefix()) and path.endswith(cells.SUFFIX)
    number = path[len(cells.prefix()):-len(cells.SUFFIX)]
    assert number == str(cells.murmur2(b"print(1)\n", cells.HASH_SEED))
    assert cells.cell_path("x = 'é'") != cells.cell_path("x = 'e'")


def test_cell_path_is_one_jupyterlab_shows_as_a_cell() -> None:
    """JupyterLab's debugger shows "Cell [n]" only for paths containing ``ipykernel_``."""
    assert "ipykernel_" in cells.cell_path("print(1)\n")
    assert str(os.getpid()) in cells.prefix()  # one directory per process


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=20), max_size=4),
                max_size=5),
       st.integers(min_value=1, max_value=7))
def test_dap_framing_round_trip(messages: list[dict[str, Any]], chunk: int) -> None:
    data = b"".join(frame(m) for m in messages)
    buffer = DAPBuffer()
    out: list[dict[str, Any]] = []
    for i in range(0, len(data), chunk):
        out += buffer.feed(data[i:i + chunk])
    assert out == messages


@pytest.mark.parametrize("data", [b"Content-Length: x\r\n\r\n{}", b"X: 1\r\n\r\n{}",
                                  b"Content-Length: 2\r\n\r\n[]", b"Content-Length: 1\r\n\r\n{"])
def test_dap_framing_rejects_garbage(data: bytes) -> None:
    with pytest.raises(DAPError):
        DAPBuffer().feed(data)


def _replay(messages: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[tuple[str, int]]:
    """Feed ``Debugger`` DAP events and ``continue`` responses as its reader would; return
    the (event, threadId) pairs it publishes to the frontend."""
    from kernel._debugger.client import Pending
    from kernel._debugger.debugger import Debugger

    published: list[dict[str, Any]] = []
    debugger = Debugger(None, published.append, spawn=lambda fn: None)  # type: ignore[arg-type]
    for kind, body, arguments in messages:
        if kind == "response":
            debugger._on_response(Pending("continue", arguments), {"type": "response", "seq": 9,
                                                                    "success": True, "body": body})
        else:
            debugger._on_event({"type": "event", "seq": 1, "event": kind, "body": body})
    return [(e["event"], e["body"]["threadId"]) for e in published]


def test_continue_response_reports_every_resumed_thread() -> None:
    """JupyterLab sends ``continue`` for thread 1 (its model forgets the stopped thread first);
    debugpy resumes all threads but may send no ``continued`` for a thread cell's worker: the
    kernel reports it when the response comes, and drops debugpy's late duplicate."""
    stop_then_continue: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("stopped", {"threadId": 6}, {}),
        ("response", {"allThreadsContinued": True}, {"threadId": 1}),
    ]
    assert _replay(stop_then_continue) == [("stopped", 6), ("continued", 6)]
    late = ("continued", {"threadId": 6, "allThreadsContinued": False}, {})
    assert _replay([*stop_then_continue, late]) == [("stopped", 6), ("continued", 6)]


def test_continued_event_before_response_is_reported_once() -> None:
    assert _replay([
        ("stopped", {"threadId": 1}, {}),
        ("continued", {"threadId": 1, "allThreadsContinued": False}, {}),
        ("response", {"allThreadsContinued": True}, {"threadId": 1}),
        ("stopped", {"threadId": 1}, {}),
    ]) == [("stopped", 1), ("continued", 1), ("stopped", 1)]


def test_single_thread_continue_reports_only_that_thread() -> None:
    assert _replay([
        ("stopped", {"threadId": 1}, {}),
        ("stopped", {"threadId": 6}, {}),
        ("response", {"allThreadsContinued": False}, {"threadId": 6}),
    ]) == [("stopped", 1), ("stopped", 6), ("continued", 6)]


@pytest.mark.parametrize(("command", "arguments", "expected"), [
    ("variables", {"variablesReference": 3}, True), ("scopes", {"frameId": 1}, True),
    ("stackTrace", {"threadId": 1}, True), ("evaluate", {"expression": "x", "frameId": 2}, True),
    ("evaluate", {"expression": "x"}, False), ("setBreakpoints", {}, False), ("continue", {}, False),
])
def test_reads_frames(command: str, arguments: dict[str, Any], expected: bool) -> None:
    assert reads_frames(command, arguments) is expected


async def test_resume_waits_for_frame_reads_in_flight() -> None:
    """A Continue sent while debugpy still owes a ``variables`` answer goes out only after
    that answer; frame reads asked for after it are refused until the next stop."""
    gate = ResumeGate()
    order: list[str] = []
    answered = trio.Event()

    async def read() -> None:
        with gate.reading():
            await answered.wait()
            order.append("variables answered")

    async def resume() -> None:
        await gate.resume()
        order.append("continue sent")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await wait_all_tasks_blocked()
        nursery.start_soon(resume)
        await wait_all_tasks_blocked()
        assert order == [] and gate.resuming  # new reads are refused from here on
        answered.set()
    assert order == ["variables answered", "continue sent"]
    assert gate.resuming
    gate.stopped()
    assert not gate.resuming


async def test_debugger_refuses_frame_reads_between_continue_and_stop() -> None:
    """Through ``Debugger.handle``: after Continue, a ``variables`` request is answered with
    a failure at once and never reaches debugpy; after the next stop it does again."""
    from kernel._debugger.debugger import Debugger

    sent: list[str] = []

    class FakeDebugpy:
        async def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
            sent.append(command)
            return {"type": "response", "seq": len(sent), "success": True, "command": command, "body": {}}

    debugger = Debugger(None, lambda event: None, spawn=lambda fn: None)  # type: ignore[arg-type]
    debugger._client = FakeDebugpy()  # type: ignore[assignment]
    variables = {"type": "request", "seq": 1, "command": "variables", "arguments": {"variablesReference": 7}}
    resume = {"type": "request", "seq": 2, "command": "continue", "arguments": {"threadId": 1}}
    assert (await debugger.handle(resume))["success"]
    refused = await debugger.handle(variables)
    assert not refused["success"] and "resuming" in refused["message"]
    assert sent == ["continue"]
    debugger._on_event({"type": "event", "seq": 3, "event": "stopped", "body": {"threadId": 1}})
    assert (await debugger.handle(variables))["success"]
    assert sent == ["continue", "variables"]


async def test_resume_with_nothing_in_flight_goes_at_once() -> None:
    gate = ResumeGate()
    with trio.fail_after(1):
        await gate.resume()


# -- end to end --------------------------------------------------------------------------

class DebugClient:
    """What JupyterLab's debugger does, over a ``Frontend``."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self.seq = 0
        self.events: list[dict[str, Any]] = []

    def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        self.seq += 1
        content: dict[str, Any] = {"type": "request", "seq": self.seq, "command": command}
        if arguments is not None:
            content["arguments"] = arguments
        reply = self.frontend.control("debug_request", content, timeout=TIMEOUT)
        assert reply["msg_type"] == "debug_reply"
        body = reply["content"]
        assert body["request_seq"] == self.seq and body["command"] == command, body
        return body

    def ok(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.request(command, arguments)
        assert body["success"], body.get("message")
        return body

    def wait_event(self, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next ``debug_event`` called ``name``; every debug event is recorded in
        ``self.events``, other iopub messages are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name!r} debug_event in {timeout} s")
            try:
                msg = self.frontend.iopub(timeout=remaining)
            except queue.Empty:
                continue
            if msg["msg_type"] == "debug_event":
                self.events.append(msg["content"])
                if msg["content"]["event"] == name:
                    return msg["content"]


@pytest.fixture
def debug_kernel() -> Iterator[Frontend]:
    with running_kernel() as frontend:
        yield frontend


def test_kernel_info_reports_debugger(kernel: Frontend) -> None:
    msg_id = kernel.kc.kernel_info()
    reply = kernel.shell_reply(msg_id)
    assert reply["content"]["debugger"] is True


def test_debug_info_before_start(kernel: Frontend) -> None:
    """JupyterLab's first request: hashing parameters, without starting debugpy."""
    client = DebugClient(kernel)
    body = client.ok("debugInfo")["body"]
    assert body["isStarted"] is False
    assert body["hashMethod"] == "Murmur2"
    assert body["tmpFileSuffix"] == ".py"
    assert body["breakpoints"] == [] and body["stoppedThreads"] == []
    reply = client.request("stackTrace", {"threadId": 1})
    assert reply["success"] is False


def test_bad_requests_get_failed_responses(kernel: Frontend) -> None:
    client = DebugClient(kernel)
    for command, arguments in [("dumpCell", {"code": 3}), ("richInspectVariables", {"variableName": "nope_"}),
                               ("source", {"source": {"path": "/nonexistent/x.py"}}), ("variables", [1]),
                               ("copyToGlobals", {"srcVariableName": "a-b"}), ("frobnicate", None)]:
        assert client.request(command, arguments)["success"] is False
    assert client.ok("richInspectVariables", {"variableName": "special variables"})["body"]["data"] == {}
    reply, _ = kernel.execute("1 + 1")
    assert reply["content"]["status"] == "ok"


def test_debugpy_is_imported_lazily(kernel: Frontend) -> None:
    """Kernel start-up must not pay for debugpy; only ``initialize`` imports it."""
    reply = kernel.kc.execute("import sys", user_expressions={"d": "'debugpy' in sys.modules"})
    content = kernel.shell_reply(reply)["content"]
    assert content["user_expressions"]["d"]["data"]["text/plain"] == "False"


def test_breakpoint_stop_inspect_continue(debug_kernel: Frontend) -> None:
    client = DebugClient(debug_kernel)
    info = client.ok("debugInfo")["body"]
    assert not info["isStarted"]

    client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path",
                             "linesStartAt1": True, "columnsStartAt1": True,
                             "supportsVariableType": True})
    client.ok("attach", {})
    info = client.ok("debugInfo")["body"]
    assert info["isStarted"] is True

    source = client.ok("dumpCell", {"code": CELL})["body"]["sourcePath"]
    expected = f"{info['tmpFilePrefix']}{cells.murmur2(CELL.encode(), info['hashSeed'])}{info['tmpFileSuffix']}"
    assert source == expected  # the name JupyterLab computes by itself
    bps = client.ok("setBreakpoints", {"source": {"path": source},
                                       "breakpoints": [{"line": BREAK_LINE}], "sourceModified": False})
    assert [bp["line"] for bp in bps["body"]["breakpoints"]] == [BREAK_LINE]
    client.ok("configurationDone")
    assert client.ok("source", {"source": {"path": source}})["body"]["content"] == CELL
    info = client.ok("debugInfo")["body"]
    assert info["breakpoints"] == [{"source": source, "breakpoints": [{"line": BREAK_LINE}]}]

    msg_id = debug_kernel.kc.execute(CELL)
    stopped = client.wait_event("stopped")
    thread_id = stopped["body"]["threadId"]
    assert client.ok("debugInfo")["body"]["stoppedThreads"] == [thread_id]

    # The cell blocks its thread; control still answers.
    frames = client.ok("stackTrace", {"threadId": thread_id})["body"]["stackFrames"]
    top = frames[0]
    assert top["source"]["path"] == source and top["line"] == BREAK_LINE and top["name"] == "add"
    scopes = client.ok("scopes", {"frameId": top["id"]})["body"]["scopes"]
    local_scope = next(s for s in scopes if s["name"].lower().startswith("local"))
    variables = client.ok("variables", {"variablesReference": local_scope["variablesReference"]})
    values = {v["name"]: v["value"] for v in variables["body"]["variables"]}
    assert values["total"] == "42" and values["a"] == "40"

    rich = client.ok("richInspectVariables", {"variableName": "total", "frameId": top["id"]})
    assert rich["body"]["data"]["text/plain"] == "42"

    client.ok("continue", {"threadId": thread_id})
    reply = debug_kernel.shell_reply(msg_id, timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok"

    # Not stopped: the kernel lists the namespace itself.
    names = {v["name"]: v["value"] for v in client.ok("inspectVariables")["body"]["variables"]}
    assert names["x"] == "40" and names["y"] == "42" and "In" not in names
    rich = client.ok("richInspectVariables", {"variableName": "y"})
    assert rich["body"]["data"]["text/plain"] == "42"

    client.ok("disconnect", {"restart": False, "terminateDebuggee": False})
    assert client.ok("debugInfo")["body"]["isStarted"] is False

    # After the session the breakpoint is gone: the same cell runs straight through.
    reply, outputs = debug_kernel.execute(CELL, timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok"
    assert all(m["msg_type"] != "debug_event" or m["content"]["event"] != "stopped" for m in outputs)


def test_step_and_copy_to_globals(debug_kernel: Frontend) -> None:
    client = DebugClient(debug_kernel)
    client.ok("debugInfo")
    client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path",
                             "linesStartAt1": True, "columnsStartAt1": True})
    client.ok("attach", {})
    source = client.ok("dumpCell", {"code": CELL})["body"]["sourcePath"]
    client.ok("setBreakpoints", {"source": {"path": source}, "breakpoints": [{"line": 6}]})
    client.ok("configurationDone")

    msg_id = debug_kernel.kc.execute(CELL)
    thread_id = client.wait_event("stopped")["body"]["threadId"]
    client.ok("stepIn", {"threadId": thread_id})
    client.wait_event("stopped")
    top = client.ok("stackTrace", {"threadId": thread_id})["body"]["stackFrames"][0]
    assert top["name"] == "add" and top["line"] == 2
    client.ok("next", {"threadId": thread_id})
    client.wait_event("stopped")
    top = client.ok("stackTrace", {"threadId": thread_id})["body"]["stackFrames"][0]
    assert top["line"] == 3
    client.ok("copyToGlobals", {"srcVariableName": "total", "dstVariableName": "copied",
                                "srcFrameId": top["id"]})
    client.ok("stepOut", {"threadId": thread_id})
    client.wait_event("stopped")
    client.ok("continue", {"threadId": thread_id})
    assert debug_kernel.shell_reply(msg_id, timeout=TIMEOUT)["content"]["status"] == "ok"
    client.ok("disconnect", {"restart": False, "terminateDebuggee": False})

    reply = debug_kernel.kc.execute("", user_expressions={"c": "copied"})
    content = debug_kernel.shell_reply(reply, timeout=TIMEOUT)["content"]
    assert content["user_expressions"]["c"]["data"]["text/plain"] == "42"


def test_second_session(debug_kernel: Frontend) -> None:
    """Switching the debugger off and on again (a new DAP session on the same adapter)."""
    client = DebugClient(debug_kernel)
    for _ in range(2):
        client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path"})
        client.ok("attach", {})
        source = client.ok("dumpCell", {"code": CELL})["body"]["sourcePath"]
        client.ok("setBreakpoints", {"source": {"path": source}, "breakpoints": [{"line": BREAK_LINE}]})
        client.ok("configurationDone")
        msg_id = debug_kernel.kc.execute(CELL)
        thread_id = client.wait_event("stopped")["body"]["threadId"]
        client.ok("continue", {"threadId": thread_id})
        assert debug_kernel.shell_reply(msg_id, timeout=TIMEOUT)["content"]["status"] == "ok"
        client.ok("disconnect", {"restart": False, "terminateDebuggee": False})


def test_stopped_queued_cell_holds_the_shell_loop(debug_kernel: Frontend) -> None:
    """A queued cell stopped at a breakpoint pauses the shell thread, and with it the shell's
    trio loop: a ``# task`` cell sent meanwhile starts only after ``continue``. Control and a
    subshell (a thread and loop of its own) keep serving."""
    client = DebugClient(debug_kernel)
    client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path"})
    client.ok("attach", {})
    source = client.ok("dumpCell", {"code": CELL})["body"]["sourcePath"]
    client.ok("setBreakpoints", {"source": {"path": source}, "breakpoints": [{"line": BREAK_LINE}]})
    client.ok("configurationDone")
    msg_id = debug_kernel.kc.execute(CELL)
    thread_id = client.wait_event("stopped")["body"]["threadId"]
    task_id = debug_kernel.submit("# task\n'the task ran'")
    subshell = debug_kernel.control("create_subshell_request")["content"]["subshell_id"]
    reply = debug_kernel.shell_reply(debug_kernel.submit("'the subshell ran'", subshell_id=subshell))
    assert reply["content"]["status"] == "ok"
    assert not debug_kernel.has_reply(task_id)  # sent before the subshell's cell, still waiting
    client.ok("continue", {"threadId": thread_id})
    assert debug_kernel.shell_reply(task_id, timeout=TIMEOUT)["content"]["status"] == "ok"
    assert debug_kernel.shell_reply(msg_id, timeout=TIMEOUT)["content"]["status"] == "ok"
    client.ok("disconnect", {"restart": False, "terminateDebuggee": False})


def test_breakpoint_in_thread_cell(debug_kernel: Frontend) -> None:
    """A ``# thread`` cell stops in its worker thread; the shell loop and control keep going."""
    client = DebugClient(debug_kernel)
    client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path"})
    client.ok("attach", {})
    code = "# thread\n" + CELL
    source = client.ok("dumpCell", {"code": code})["body"]["sourcePath"]
    client.ok("setBreakpoints", {"source": {"path": source}, "breakpoints": [{"line": BREAK_LINE + 1}]})
    client.ok("configurationDone")
    msg_id = debug_kernel.kc.execute(code)
    thread_id = client.wait_event("stopped")["body"]["threadId"]
    top = client.ok("stackTrace", {"threadId": thread_id})["body"]["stackFrames"][0]
    assert top["source"]["path"] == source and top["line"] == BREAK_LINE + 1
    reply, _ = debug_kernel.execute("# task\n'the shell loop runs'")  # not blocked by the stopped thread
    assert reply["content"]["status"] == "ok"
    client.ok("continue", {"threadId": thread_id})
    assert debug_kernel.shell_reply(msg_id, timeout=TIMEOUT)["content"]["status"] == "ok"
    client.ok("disconnect", {"restart": False, "terminateDebuggee": False})


def test_shutdown_while_stopped() -> None:
    """Shutting down with a cell stopped at a breakpoint ends the session and exits cleanly."""
    with running_kernel() as frontend:
        client = DebugClient(frontend)
        client.ok("initialize", {"clientID": "test", "adapterID": "trio", "pathFormat": "path"})
        client.ok("attach", {})
        source = client.ok("dumpCell", {"code": CELL})["body"]["sourcePath"]
        client.ok("setBreakpoints", {"source": {"path": source}, "breakpoints": [{"line": BREAK_LINE}]})
        client.ok("configurationDone")
        frontend.kc.execute(CELL)
        client.wait_event("stopped")
        process = frontend.km.provisioner.process  # type: ignore[union-attr]
        started = time.monotonic()
        frontend.kc.shutdown()
        assert process.wait(timeout=TIMEOUT) == 0  # exited by itself, not killed
        assert time.monotonic() - started < 10
