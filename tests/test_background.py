"""``background``: trio tasks that outlive their cell, over real sockets.

Handshakes go through ``trio.Event`` objects in the namespace and printed markers; every
wait has a deadline (the harness's), none is a sleep.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

import kernel
from tests.harness import Frontend, running_kernel, stdout_of
from tests.test_embedding import attached, run

SETUP = (
    "import trio\n"
    "go = trio.Event()\n"
    "async def waits_then_prints(event, text):\n"
    "    await event.wait()\n"
    "    print(text)\n"
)


def errors_of(outputs: list[dict]) -> list[dict]:
    return [m["content"] for m in outputs if m["msg_type"] == "error"]


def test_cell_goes_idle_and_task_output_goes_to_its_cell(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    reply, outputs = kernel.execute("go = trio.Event()\nbackground.start_soon(waits_then_prints, go, 'late')")
    started = reply["parent_header"]["msg_id"]
    # The cell ended (reply and idle came) although its task still waits.
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == ""
    _, outputs = kernel.execute("go.set()")
    assert stdout_of(outputs) == ""  # not the setting cell's output...
    msg = kernel.iopub_for(started)  # ...but the starting cell's, after its idle
    assert msg["msg_type"] == "stream" and msg["content"]["text"] == "late\n"


def test_display_handle_updates_in_place(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    reply, outputs = kernel.execute(
        "go = trio.Event()\n"
        "async def progress(event):\n"
        "    handle = display('step 0', display_id=True)\n"
        "    await event.wait()\n"
        "    handle.update('step 1')\n"
        "background.start_soon(progress, go)\n"
    )
    started = reply["parent_header"]["msg_id"]
    first = outputs[-1] if outputs else kernel.iopub_for(started)
    while first["msg_type"] != "display_data":
        first = kernel.iopub_for(started)
    display_id = first["content"]["transient"]["display_id"]
    kernel.execute("go.set()")
    update = kernel.iopub_for(started)
    assert update["msg_type"] == "update_display_data"
    assert update["content"]["transient"]["display_id"] == display_id
    assert update["content"]["data"]["text/plain"] == "'step 1'"


def test_failing_task_is_an_error_of_its_cell_and_the_others_go_on(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    kernel.execute("go = trio.Event()\nsurvivor = background.start_soon(waits_then_prints, go, 'survived')")
    reply, outputs = kernel.execute(
        "async def boom():\n    await trio.sleep(0)\n    raise ValueError('bad task')\n"
        "background.start_soon(boom, name='boomer')"
    )
    assert reply["content"]["status"] == "ok"  # the cell itself did not fail
    started = reply["parent_header"]["msg_id"]
    error = next((m for m in outputs if m["msg_type"] == "error"), None) or kernel.iopub_for(started)
    assert error["msg_type"] == "error"
    assert error["content"]["ename"] == "ValueError" and error["content"]["evalue"] == "bad task"
    assert "boomer" in error["content"]["traceback"][0]
    _, outputs = kernel.execute("print(survivor.state)\n%tasks")
    text = stdout_of(outputs)
    assert text.startswith("running\n")
    assert any(line.split()[1:2] == ["boomer"] and line.endswith("failed") for line in text.splitlines())
    kernel.execute("go.set()")


def test_start_returns_the_started_value_and_errors_before_it_reach_the_cell(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    _, outputs = kernel.execute(
        "async def serve(port, task_status):\n    task_status.started(port + 1)\n    await trio.sleep_forever()\n"
        "await background.start(serve, 8000, name='server')"
    )
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["8001"]
    reply, outputs = kernel.execute(
        "async def broken(task_status):\n    raise OSError('port in use')\nawait background.start(broken)"
    )
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "OSError"
    kernel.execute("%tasks cancel server")


def test_tasks_magic_lists_and_cancels_by_id_name_and_all(fresh_kernel: Frontend) -> None:
    fe = fresh_kernel
    fe.execute(SETUP)
    reply, _ = fe.execute(
        "async def forever(tag):\n"
        "    try:\n        await trio.sleep_forever()\n"
        "    finally:\n        print('cleanup', tag)\n"
        "a = background.start_soon(forever, 'a', name='alpha')\n"
        "b = background.start_soon(forever, 'b', name='beta')\n"
        "c = background.start_soon(forever, 'c', name='gamma')\n"
    )
    _, outputs = fe.execute("%tasks")
    lines = stdout_of(outputs).splitlines()
    assert lines[0].split() == ["id", "name", "cell", "age", "state"]
    assert [line.split()[:3] + line.split()[4:] for line in lines[1:]] == [
        ["1", "alpha", "In[2]", "running"], ["2", "beta", "In[2]", "running"], ["3", "gamma", "In[2]", "running"]]
    _, outputs = fe.execute("%tasks cancel 1")
    assert "1 alpha" in stdout_of(outputs)
    _, outputs = fe.execute("%tasks cancel beta")
    assert "2 beta" in stdout_of(outputs)
    _, outputs = fe.execute("%tasks cancel all")
    assert "3 gamma" in stdout_of(outputs)
    starting_cell, seen = reply["parent_header"]["msg_id"], ""
    while seen.count("cleanup") < 3:  # their finally blocks ran, output to the starting cell
        seen += fe.iopub_for(starting_cell)["content"]["text"]
    assert sorted(seen.splitlines()) == ["cleanup a", "cleanup b", "cleanup c"]
    _, outputs = fe.execute("print(a.state, b.state, c.state)")
    assert stdout_of(outputs) == "cancelled cancelled cancelled\n"
    reply, outputs = fe.execute("%tasks cancel nosuch")
    assert reply["content"]["status"] == "error" and "nosuch" in reply["content"]["evalue"]


def test_interrupt_stops_the_cell_not_the_tasks(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    kernel.execute("go = trio.Event()\nkept = background.start_soon(waits_then_prints, go, 'x')")
    msg_id = kernel.submit("print('sleeping')\nawait trio.sleep(60)")
    kernel.wait_for_stream(msg_id, "sleeping")
    kernel.control("interrupt_request")
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"
    _, outputs = kernel.execute("print(kept.state)\ngo.set()")
    assert stdout_of(outputs) == "running\n"


def test_thread_cells_get_a_clear_error(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    reply, _ = kernel.execute("# thread\nbackground.start_soon(trio.sleep, 1)")
    assert reply["content"]["ename"] == "RuntimeError"
    assert "# thread` cell" in reply["content"]["evalue"]


def test_restart_cancels_tasks_and_waits_for_their_finally(tmp_path: Path) -> None:
    marker = tmp_path / "finally-ran"
    with running_kernel() as fe:
        reply, _ = fe.execute(
            "import trio\n"
            "async def service(path):\n"
            "    try:\n        await trio.sleep_forever()\n"
            "    finally:\n"
            "        with trio.CancelScope(shield=True):\n"
            "            await trio.sleep(0.2)  # cleanup that awaits\n"
            "        open(path, 'w').write('clean')\n"
            "        print('cleaned up')\n"
            f"background.start_soon(service, {str(marker)!r})"
        )
        starting_cell = reply["parent_header"]["msg_id"]
        started = time.monotonic()
        fe.km.restart_kernel(now=False)  # a shutdown_request with restart: true, then a new process
        assert time.monotonic() - started < 5  # graceful, not killed after jupyter_client's wait
        assert marker.read_text() == "clean"
        # Cancelled before the sockets closed: the cleanup's output reached the frontend.
        msg = fe.iopub_for(starting_cell, timeout=5)
        while msg["msg_type"] == "status":  # jupyter_client's manager may reuse the msg_id
            msg = fe.iopub_for(starting_cell, timeout=5)
        assert msg["content"]["text"] == "cleaned up\n"


async def test_embedded_kernel_runs_tasks_on_the_application_loop() -> None:
    cleaned: list[str] = []

    async def app_side(seen: trio.Event) -> None:
        try:
            seen.set()
            await trio.sleep_forever()
        finally:
            cleaned.append("done")

    seen = trio.Event()
    with trio.fail_after(60):
        async with kernel.open_kernel({"app_side": app_side, "seen": seen}) as k, \
                attached(k.connection_file) as client:
            await run_and_check(client, "import trio\nt = background.start_soon(app_side, seen)\n"
                                        "loop_token = trio.lowlevel.current_trio_token()")
            await seen.wait()  # the task runs on this (the application's) loop
            assert k.namespace["t"].state == "running"
            assert k.namespace["loop_token"] is trio.lowlevel.current_trio_token()
        assert cleaned == ["done"]  # leaving the block cancelled it and ran its finally
    assert k.namespace["t"].state == "cancelled"


async def run_and_check(client, code: str) -> None:  # type: ignore[no-untyped-def]
    assert client.fe is not None
    await client.call(run, client.fe, code)


def test_background_survives_reset_and_stays_out_of_who(kernel: Frontend) -> None:
    _, outputs = kernel.execute("%reset -f\nprint(type(background).__name__)\n%who")
    assert stdout_of(outputs) == "BackgroundTasks\nInteractive namespace is empty.\n"


def test_tasks_table_and_ages() -> None:
    from kernel._shell.background import BackgroundTask, BackgroundTasks, _age

    assert [_age(s) for s in (0.04, 59.9, 61, 3599, 3661)] == ["0.0s", "59.9s", "1m01s", "59m59s", "1h01m"]
    tasks = BackgroundTasks(shell=None)  # type: ignore[arg-type]
    assert tasks.table() == "no background tasks"
    now = time.monotonic()
    tasks._tasks = {1: BackgroundTask(1, "poller", 3, now - 5, state="running"),
                    2: BackgroundTask(2, "a much longer name", None, now - 90, state="failed", ended_at=now - 30)}
    lines = tasks.table().splitlines()
    assert lines[0].split() == ["id", "name", "cell", "age", "state"]
    assert lines[1].split()[:3] == ["1", "poller", "In[3]"] and lines[1].endswith("running")
    assert lines[2].split("  ")[0] == "2" and "a much longer name" in lines[2]
    assert lines[2].split()[-3:] == ["-", "1m00s", "failed"]
    column = lines[0].index("cell")  # columns line up
    assert lines[1][column:].startswith("In[3]") and lines[2][column:].startswith("- ")


def test_hostile_task_errors_are_reported_not_fatal(kernel: Frontend) -> None:
    kernel.execute(SETUP)
    reply, _ = kernel.execute(
        "async def group():\n"
        "    async def fail():\n        raise ValueError('inner')\n"
        "    async with trio.open_nursery() as nursery:\n        nursery.start_soon(fail)\n"
        "async def exits():\n    await trio.sleep(0)\n    raise SystemExit(3)\n"
        "async def interrupts():\n    await trio.sleep(0)\n    raise KeyboardInterrupt\n"
        "for fn in (group, exits, interrupts):\n    background.start_soon(fn)\n"
    )
    started = reply["parent_header"]["msg_id"]
    names = sorted(kernel.iopub_for(started)["content"]["ename"] for _ in range(3))
    assert names == ["ExceptionGroup", "KeyboardInterrupt", "SystemExit"]
    _, outputs = kernel.execute("print('still here')")
    assert stdout_of(outputs) == "still here\n"
