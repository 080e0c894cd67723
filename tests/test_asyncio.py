"""asyncio in trio cells (through the kernel's trio-asyncio loop), over real sockets.

Side by side with ipykernel where the behaviour is the user's: the same asyncio cell prints
the same thing in both kernels; ``asyncio.run()`` fails in both, ours saying what to do.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.harness import Frontend, running_kernel, stdout_of

GATHER = (
    "import asyncio\n"
    "async def double(x):\n"
    "    await asyncio.sleep(0.01 * x)\n"
    "    return 2 * x\n"
    "print(await asyncio.gather(double(3), double(1), double(2)))\n"
)


def ok(fe: Frontend, code: str) -> str:
    reply, outputs = fe.execute(code)
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", errors or reply["content"]
    return stdout_of(outputs)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listening TCP socket that never accepts or answers: a read from it waits forever."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_start_up_and_trio_cells_load_no_asyncio(fresh_kernel: Frontend) -> None:
    # The cells below never name the module in their text: that alone would open the loop.
    probe = "import sys\nprint(sorted(m for m in sys.modules if m in ('asyn' + 'cio', 'trio_' + 'asyn' + 'cio')))"
    assert ok(fresh_kernel, probe) == "[]\n"
    ok(fresh_kernel, "import trio\nawait trio.sleep(0)")
    assert ok(fresh_kernel, probe) == "[]\n"
    # Imported under another name, by "a library": the loop opens before the next cell...
    ok(fresh_kernel, "import importlib\nlib = importlib.import_module('asyn' + 'cio')")
    assert ok(fresh_kernel, probe) == "['asyncio', 'trio_asyncio']\n"
    # ...so that a synchronous statement of the next cell finds it.
    assert ok(fresh_kernel, "print(lib.get_running_loop().is_running())") == "True\n"


def test_gather_prints_what_ipykernel_prints(kernel: Frontend) -> None:
    ours = ok(kernel, GATHER)
    with running_kernel("python3") as ipykernel:
        theirs = ok(ipykernel, GATHER)
    assert ours == theirs == "[6, 2, 4]\n"


def test_asyncio_and_trio_mix_in_one_cell_over_real_sockets(kernel: Frontend) -> None:
    out = ok(kernel, (
        "import asyncio, trio\n"
        "async def shout(reader, writer):\n"
        "    line = await reader.readline()\n"
        "    writer.write(line.upper())\n"
        "    await writer.drain()\n"
        "    writer.close()\n"
        "server = await asyncio.start_server(shout, '127.0.0.1', 0)   # an asyncio server...\n"
        "port = server.sockets[0].getsockname()[1]\n"
        "stream = await trio.open_tcp_stream('127.0.0.1', port)        # ...a trio client\n"
        "await stream.send_all(b'hello\\n')\n"
        "print((await stream.receive_some(100)).decode().strip())\n"
        "await stream.aclose()\n"
        "server.close()\n"
        "await server.wait_closed()\n"
    ))
    assert out == "HELLO\n"


def test_cell_is_an_asyncio_task_so_timeouts_work(kernel: Frontend) -> None:
    out = ok(kernel, (
        "import asyncio, trio\n"
        "async def probe():\n"
        "    return asyncio.current_task()\n"
        "print(await probe() is not None, asyncio.get_running_loop().is_running())\n"
        "try:\n"
        "    async with asyncio.timeout(0.05):\n"
        "        await asyncio.sleep(30)\n"
        "except TimeoutError:\n"
        "    print('asyncio.timeout fired')\n"
        "try:\n"
        "    await asyncio.wait_for(asyncio.sleep(30), 0.05)\n"
        "except TimeoutError:\n"
        "    print('wait_for fired')\n"
    ))
    assert out == "True True\nasyncio.timeout fired\nwait_for fired\n"


def test_interrupt_cancels_an_asyncio_read(kernel: Frontend, silent_server: int) -> None:
    msg_id = kernel.submit(
        "import asyncio\n"
        f"reader, writer = await asyncio.open_connection('127.0.0.1', {silent_server})\n"
        "try:\n"
        "    print('connected')\n"
        "    await reader.read(1)\n"
        "except asyncio.CancelledError:\n"
        "    print('asyncio code saw CancelledError')\n"
        "    raise\n"
        "finally:\n"
        "    writer.close()\n"
    )
    kernel.wait_for_stream(msg_id, "connected")
    kernel.control("interrupt_request")
    reply = kernel.shell_reply(msg_id)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "asyncio code saw CancelledError" in stdout_of(kernel.outputs_until_idle(msg_id))
    assert ok(kernel, "await asyncio.sleep(0)\nprint('usable')") == "usable\n"


def test_cell_timeout_cancels_an_asyncio_read(kernel: Frontend, silent_server: int) -> None:
    reply, _ = kernel.execute(
        "# timeout=0.5\n"
        "import asyncio\n"
        f"reader, writer = await asyncio.open_connection('127.0.0.1', {silent_server})\n"
        "await reader.read(1)\n"
    )
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "TimeoutError"
    assert "timeout of 0.5 s" in reply["content"]["evalue"]


def asyncio_task_outlives_its_cell(fe: Frontend) -> str:
    ok(fe, "import asyncio\nready = asyncio.Event()\n"
           "async def waiter():\n    await ready.wait()\n    return 'woken'\n")
    ok(fe, "task = asyncio.create_task(waiter())")  # a synchronous statement finds the loop
    return ok(fe, "ready.set()\nprint(await task)")


def test_asyncio_tasks_outlive_the_cell_like_in_ipykernel(kernel: Frontend) -> None:
    assert asyncio_task_outlives_its_cell(kernel) == "woken\n"
    with running_kernel("python3") as ipykernel:
        assert asyncio_task_outlives_its_cell(ipykernel) == "woken\n"


def test_background_tasks_may_await_asyncio(kernel: Frontend) -> None:
    reply, _ = kernel.execute(
        "import asyncio, trio\n"
        "async def mixed():\n"
        "    await asyncio.sleep(0.01)\n"
        "    await trio.sleep(0.01)\n"
        "    print('both awaited')\n"
        "background.start_soon(mixed)\n"
    )
    assert kernel.iopub_for(reply["parent_header"]["msg_id"])["content"]["text"] == "both awaited\n"


def test_anyio_runs_on_trio(kernel: Frontend) -> None:
    out = ok(kernel, "import anyio, asyncio, sniffio\nawait asyncio.sleep(0)\nawait anyio.sleep(0.01)\n"
                     "print(sniffio.current_async_library())")
    assert out == "trio\n"


def test_asyncio_run_says_what_to_do_where_ipykernel_does_not(kernel: Frontend) -> None:
    code = "import asyncio\nasync def main():\n    return 1\nawait asyncio.sleep(0)\nasyncio.run(main())"
    reply, _ = kernel.execute(code)
    assert reply["content"]["ename"] == "RuntimeError"
    assert "`await main()`" in reply["content"]["evalue"]
    with running_kernel("python3") as ipykernel:
        theirs, _ = ipykernel.execute(code)
    assert theirs["content"]["ename"] == "RuntimeError"
    assert "await" not in theirs["content"]["evalue"]  # "cannot be called from a running event loop"


def test_thread_cells_get_an_asyncio_loop_of_their_own(kernel: Frontend, silent_server: int) -> None:
    out = ok(kernel, "# thread\n" + GATHER + "import threading\n"
                     "print(threading.current_thread() is not threading.main_thread())\n"
                     "leftover = asyncio.create_task(asyncio.sleep(3600))\n")
    assert out == "[6, 2, 4]\nTrue\n"
    assert ok(kernel, "print(leftover.cancelled())") == "True\n"  # closed with its cell
    msg_id = kernel.submit(
        "# thread\nimport asyncio\n"
        f"reader, writer = await asyncio.open_connection('127.0.0.1', {silent_server})\n"
        "print('connected')\nawait reader.read(1)\n")
    kernel.wait_for_stream(msg_id, "connected")
    kernel.control("interrupt_request")
    assert kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"


def test_importing_asyncio_mid_cell_says_to_run_it_again(fresh_kernel: Frontend) -> None:
    code = ("import importlib\n"
            "async def late():\n"
            "    lib = importlib.import_module('asyn' + 'cio')  # the cell's text does not name it\n"
            "    await lib.sleep(0.01)\n"
            "await late()")
    reply, outputs = fresh_kernel.execute(code)
    assert reply["content"]["evalue"] == "no running event loop"
    error = next(m["content"] for m in outputs if m["msg_type"] == "error")
    assert "run the cell again" in error["traceback"][-1]
    assert ok(fresh_kernel, code) == ""  # and then it works


def test_tracebacks_start_at_the_users_code(kernel: Frontend) -> None:
    """The driver's frame (like run_code's) is not part of what the user sees."""
    code = "import trio\nasync def fails():\n    await trio.sleep(0)\n    1 / 0\n"
    _, outputs = kernel.execute(code + "await fails()")
    (error,) = [m["content"] for m in outputs if m["msg_type"] == "error"]
    frames = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error["traceback"][2:]]
    assert frames[0].startswith("Cell In["), frames[0]
    assert not any("asyncio_bridge" in f for f in frames)
    reply, _ = kernel.execute(code + "background.start_soon(fails)")
    failure = kernel.iopub_for(reply["parent_header"]["msg_id"])["content"]
    assert not any("asyncio_bridge" in line or "background.py" in line for line in failure["traceback"])


def test_shutdown_closes_the_asyncio_loop_and_its_tasks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "asyncio-task-cancelled"
    with running_kernel() as fe:
        ok(fe, "import asyncio\n"
               "async def forever(path):\n"
               "    try:\n        await asyncio.sleep(3600)\n"
               "    except asyncio.CancelledError:\n        open(path, 'w').write('cancelled')\n        raise\n"
               f"pending = asyncio.create_task(forever({str(marker)!r}))\n"
               "await asyncio.sleep(0)\n")
        process = fe.km.provisioner.process  # type: ignore[union-attr]
        fe.kc.shutdown()
        assert process.wait(20) == 0
    assert marker.read_text() == "cancelled"


def test_loop_opening_while_a_trio_task_steps_leaves_it_alone(fresh_kernel: Frontend) -> None:
    """A background task that only awaits trio keeps going while a cell opens the asyncio
    loop (the driver never awaits between two steps of a coroutine: that would run inside
    the coroutine's cancel scopes)."""
    ok(fresh_kernel, "import trio\nstop = trio.Event()\n"
                     "async def ticks():\n    while not stop.is_set():\n        await trio.sleep(0.001)\n"
                     "ticker = background.start_soon(ticks)")
    for _ in range(3):
        ok(fresh_kernel, "import asyncio\nawait asyncio.sleep(0.01)")
    assert ok(fresh_kernel, "stop.set()\nawait trio.sleep(0.05)\nprint(ticker.state)") == "done\n"


# The stand-in asyncio task, without a kernel ---------------------------------------------


class FakeFuture:
    def __init__(self, cancellable: bool) -> None:
        self.cancellable = cancellable
        self.cancel_messages: list[str | None] = []

    def cancel(self, msg: str | None = None) -> bool:
        self.cancel_messages.append(msg)
        return self.cancellable


def test_cell_task_cancels_the_future_it_waits_on() -> None:
    from kernel._shell.asyncio_bridge import CellTask

    task = CellTask(loop=None, name="cell")
    task.waiting_on = FakeFuture(cancellable=True)
    assert task.cancel("deadline") and task.cancelling() == 1
    assert task.waiting_on.cancel_messages == ["deadline"]
    assert task.must_cancel is False  # the future carries the cancellation
    assert task.uncancel() == 0 and task.uncancel() == 0  # never below zero


def test_cell_task_waiting_on_trio_is_cancelled_at_its_next_step() -> None:
    from kernel._shell.asyncio_bridge import CellTask

    task = CellTask(loop=None, name="cell")
    task.cancel()
    assert task.must_cancel is True
    task.waiting_on = FakeFuture(cancellable=False)  # already done: cannot take it
    task.cancel("why")
    assert task.must_cancel == "why" and task.cancelling() == 2


def test_subshell_cells_await_asyncio(kernel: Frontend) -> None:
    subshell = kernel.control("create_subshell_request")["content"]["subshell_id"]
    try:
        msg_id = kernel.submit(GATHER, subshell_id=subshell)
        assert kernel.shell_reply(msg_id)["content"]["status"] == "ok"
        assert stdout_of(kernel.outputs_until_idle(msg_id)) == "[6, 2, 4]\n"
    finally:
        kernel.control("delete_subshell_request", {"subshell_id": subshell})
