"""``open_kernel()`` inside a running trio program, and the embedded-server example.

The in-process tests are trio tests: the kernel runs on the test's own loop, and a
jupyter_client ``BlockingKernelClient`` talks to it over real zmq sockets from a worker
thread (``trio.to_thread.run_sync``), so the loop stays free to run the cells. The example
test starts ``examples/embedded_server.py`` as a process and drives it through its TCP
socket and through the kernel. Every wait has a deadline.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_core.utils import ensure_event_loop

import kernel
from tests.harness import TIMEOUT, Frontend, stdout_of

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embedded_server.py"
T = TypeVar("T")


class Client:
    """A blocking jupyter_client frontend on a thread of its own, driven from trio.

    jupyter_client's blocking calls run a private asyncio loop kept per thread (in a
    context variable), so every call is made on this one thread, which closes that loop
    when done; the trio loop only waits for the results, and stays free to run the cells.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-client")
        self.fe: Frontend | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        future = self._pool.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    async def run(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        assert self.fe is not None
        return await self.call(run, self.fe, code)


def _detach(fe: Frontend | None) -> None:
    if fe is not None:
        fe.kc.stop_channels()
    ensure_event_loop().close()


@asynccontextmanager
async def attached(connection_file: Path | str) -> AsyncIterator[Client]:
    """A ``Client`` attached to the kernel; detached, and its thread joined, on exit."""
    client = Client()
    try:
        client.fe = await client.call(attach, connection_file)
        yield client
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(TIMEOUT):
            await client.call(_detach, client.fe)
            await trio.to_thread.run_sync(client._pool.shutdown)


def attach(connection_file: Path | str) -> Frontend:
    """A client attached to a running kernel the way ``jupyter console --existing`` does."""
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
    except BaseException:
        kc.stop_channels()
        raise
    return Frontend(None, kc)  # type: ignore[arg-type]  # no manager: we did not start it


def run(fe: Frontend, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute ``code``, insist that it succeeds, return (reply, outputs)."""
    reply, outputs = fe.execute(code)
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", errors or reply["content"]
    return reply, outputs


def busy_threads() -> set[threading.Thread]:
    """Live threads, except trio's idle cached workers (named "Trio thread N" while idle)."""
    return {t for t in threading.enumerate() if not re.fullmatch(r"Trio thread \d+", t.name)}


THREADS_DEADLINE = 10.0


async def threads_back_to(baseline: set[threading.Thread]) -> None:
    """Wait (polling, with a deadline) until no thread beyond ``baseline`` is alive."""
    deadline = trio.current_time() + THREADS_DEADLINE
    while extra := busy_threads() - baseline:
        if trio.current_time() > deadline:
            raise AssertionError(f"threads left behind: {sorted(t.name for t in extra)}")
        await trio.sleep(0.02)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class App:
    """Stands for an application's objects: something a cell can ``await``."""

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.send, self.receive = trio.open_memory_channel[int](10)

    async def answer(self) -> int:
        await self.ready.wait()
        return 42


# in-process -------------------------------------------------------------------------------


async def test_cells_run_on_the_application_loop() -> None:
    app = App()
    with trio.fail_after(60):
        async with kernel.open_kernel({"app": app}, name="embedded") as k:
            info = json.loads(await trio.Path(k.connection_file).read_text())
            assert info == k.connection_info
            assert info["kernel_name"] == "embedded"
            assert info["ip"] == "127.0.0.1"
            assert (await trio.Path(k.connection_file).stat()).st_mode & 0o777 == 0o600
            async with attached(k.connection_file) as client, trio.open_nursery() as nursery:
                result: list[Any] = []

                async def run_cell() -> None:
                    result.append(await client.run(
                        "import trio\n"
                        "loop_token = trio.lowlevel.current_trio_token()\n"
                        "await app.send.send(7)\n"
                        "print('answer', await app.answer())"
                    ))

                nursery.start_soon(run_cell)
                # The cell runs on our loop: it hands us a value, then waits for us.
                assert await app.receive.receive() == 7
                assert not result
                app.ready.set()
            (_, outputs) = result[0]
            assert stdout_of(outputs) == "answer 42\n"
            assert k.namespace["loop_token"] is trio.lowlevel.current_trio_token()
            assert k.namespace is k.shell.user_ns
            assert k.namespace["app"] is app


async def test_leaving_the_block_cleans_up() -> None:
    baseline = busy_threads()
    with trio.fail_after(60):
        async with kernel.open_kernel() as k:
            path = Path(k.connection_file)
            ports = [k.connection_info[p] for p in
                     ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
            assert await trio.Path(path).exists()
            assert not any(port_is_free(p) for p in ports)
            async with attached(path) as client:
                await client.run("x = 1")
                # Leave the block while a cell still runs: it is stopped, not waited for.
                assert client.fe is not None
                fe = client.fe
                msg_id = await client.call(fe.kc.execute, "import trio\nprint('sleeping')\nawait trio.sleep(60)")
                await client.call(fe.wait_for_stream, msg_id, "sleeping")
        assert not await trio.Path(path).exists()
        assert all(port_is_free(p) for p in ports)
        await threads_back_to(baseline)


async def test_application_exception_propagates() -> None:
    baseline = busy_threads()

    class AppError(Exception):
        pass

    with trio.fail_after(60), pytest.raises(AppError, match="boom") as caught:
        async with kernel.open_kernel() as k:
            path = Path(k.connection_file)
            async with attached(path) as client:
                await client.run("x = 1")
            raise AppError("boom")
    assert type(caught.value) is AppError  # as raised, not wrapped in an ExceptionGroup
    assert not await trio.Path(path).exists()
    await threads_back_to(baseline)


async def test_shutdown_request_ends_wait_for_shutdown() -> None:
    with trio.fail_after(60):
        async with kernel.open_kernel() as k, attached(k.connection_file) as client:
            assert client.fe is not None
            reply = await client.call(client.fe.control, "shutdown_request", {"restart": False})
            assert reply["content"]["status"] == "ok"
            await k.wait_for_shutdown()
            assert not k.restart_requested


async def test_two_kernels_side_by_side() -> None:
    baseline = busy_threads()
    with trio.fail_after(60):
        async with (
            kernel.open_kernel({"who": "a"}) as ka,
            kernel.open_kernel({"who": "b"}) as kb,
            attached(ka.connection_file) as ca,
            attached(kb.connection_file) as cb,
        ):
            assert ka.connection_file != kb.connection_file
            assert ka.connection_info["shell_port"] != kb.connection_info["shell_port"]
            _, out_a = await ca.run("mine = who * 2\nprint('I am', who)")
            _, out_b = await cb.run("mine = who * 3\nprint('I am', who)")
            assert stdout_of(out_a) == "I am a\n"
            assert stdout_of(out_b) == "I am b\n"
            assert ka.namespace["mine"] == "aa"
            assert kb.namespace["mine"] == "bbb"
            assert ka.shell is not kb.shell

            # Both at once: each cell's output reaches its own client only.
            results: dict[str, Any] = {}

            async def loop_and_print(name: str, client: Client) -> None:
                results[name] = await client.run(
                    "import trio\nfor i in range(3):\n    print(who, i)\n    await trio.sleep(0)"
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop_and_print, "a", ca)
                nursery.start_soon(loop_and_print, "b", cb)
            assert stdout_of(results["a"][1]) == "a 0\na 1\na 2\n"
            assert stdout_of(results["b"][1]) == "b 0\nb 1\nb 2\n"
        assert not await trio.Path(ka.connection_file).exists()
        assert not await trio.Path(kb.connection_file).exists()
        await threads_back_to(baseline)


async def test_one_kernel_outlives_another() -> None:
    with trio.fail_after(60):
        async with kernel.open_kernel({"who": "long"}) as k:
            async with kernel.open_kernel({"who": "short"}) as short, attached(short.connection_file) as client:
                await client.run("print(who)")
            async with attached(k.connection_file) as client:
                _, outputs = await client.run("print(who)")
            assert stdout_of(outputs) == "long\n"


# the example as a process ---------------------------------------------------------------------


class Lines:
    """A process's stdout lines, read by a thread into a queue, taken with deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r} in {timeout} s; saw {self.seen}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive()


@contextmanager
def example_server() -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    proc = subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = Lines(proc)
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        lines.join(timeout=TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()


class LineClient:
    """A client of the example's line protocol."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rw", encoding="utf-8", newline="\n")

    def ask(self, line: str) -> str:
        self.file.write(line + "\n")
        self.file.flush()
        return self.read()

    def read(self) -> str:
        return self.file.readline().rstrip("\n")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_embedded_server_example() -> None:
    with example_server() as (proc, lines):
        port = int(lines.expect(r"serving on 127\.0\.0\.1:(\d+)$").group(1))
        path = Path(lines.expect(r"kernel connection file: (.+)$").group(1))
        assert lines.expect(r"attach with: jupyter console --existing (.+)$").group(1) == str(path)
        assert path.exists()

        client = LineClient(port)
        lines.expect(r"client connected \(1 now\)")
        fe = attach(path)
        try:
            assert client.ask("INCR 2") == "counter 2"
            _, outputs = run(fe, "print(server.counter, len(server.clients))\nserver.counter += 5")
            assert stdout_of(outputs) == "2 1\n"
            assert client.ask("GET") == "counter 7"

            _, outputs = run(fe, "await server.broadcast('hello from the kernel')")
            assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["1"]
            assert client.read() == "hello from the kernel"

            # The server's own output still goes to its terminal after cells ran, not to a cell.
            second = LineClient(port)
            lines.expect(r"client connected \(2 now\)")
            assert second.ask("CLIENTS") == "clients 2"
            second.close()
            assert client.ask("INCR x").startswith("error:")
        finally:
            fe.kc.stop_channels()
            client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0, lines.seen
        lines.expect(r"kernel closed; stopping")
        assert not path.exists()
    assert proc.poll() is not None


def _process_wide() -> dict[str, object]:
    import builtins
    import getpass
    import sys
    import threading

    import comm

    return {"stdout": sys.stdout, "stderr": sys.stderr, "input": builtins.input, "getpass": getpass.getpass,
            "Thread.start": threading.Thread.start, "comm.create_comm": comm.create_comm,
            "comm.get_comm_manager": comm.get_comm_manager}


async def test_process_wide_patches_are_held_while_any_kernel_is_open_and_undone_after() -> None:
    from kernel._shell import cell as _cell

    before = _process_wide()
    with trio.fail_after(60):
        async with kernel.open_kernel({"who": "outer"}):
            patched = _process_wide()
            assert all(patched[name] is not before[name] for name in before), "each one is patched"
            async with kernel.open_kernel({"who": "inner"}):
                assert _process_wide() == patched
                assert len(_cell._fallbacks) == 2
            assert _process_wide() == patched, "the outer kernel still needs them"
            assert len(_cell._fallbacks) == 1
    after = _process_wide()
    assert all(after[name] is before[name] for name in before), "the last kernel to close undoes them"
    assert _cell._fallbacks == []
