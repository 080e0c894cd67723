"""``usage_request`` and ``connect_request``, side by side with ipykernel.

jupyter-resource-usage's kernel panel sends ``usage_request`` on control and shows
``kernel_cpu`` and ``kernel_memory``; its reply keys must be ipykernel's. The socket tests
run against both kernels (``python3`` checks the test itself) and assert properties of the
numbers that hold whatever the machine's load: CPU time a cell burned shows up in
``kernel_cpu``, memory a cell (or a child process it started) holds shows up in
``kernel_memory``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel._control.usage import PORT_NAMES, UsageMeter, connect_reply, usage_reply
from tests.harness import Frontend, running_kernel, stdout_of

KERNELS = ["trio", "python3"]
MIB = 2**20


@pytest.fixture(scope="module", params=KERNELS)
def any_kernel(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    with running_kernel(request.param) as frontend:
        yield frontend


def run(frontend: Frontend, code: str) -> str:
    reply, outputs = frontend.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    return stdout_of(outputs)


# --- pure builders -------------------------------------------------------------------


@given(ports=st.dictionaries(st.sampled_from([*PORT_NAMES, "key", "ip", "transport"]),
                             st.integers(0, 65535)))
def test_connect_reply_carries_ports_only(ports: dict[str, int]) -> None:
    """Whatever the connection info holds, the reply has the ports and status, never the key."""
    content = connect_reply(ports)
    assert content.pop("status") == "ok"
    assert content == {k: v for k, v in ports.items() if k in PORT_NAMES}


@given(cpu=st.one_of(st.none(), st.floats(0, 400)), host=st.one_of(st.none(), st.floats(0, 100)))
def test_usage_reply_omissions(cpu: float | None, host: float | None) -> None:
    """Fields ipykernel leaves out stay out: host CPU when 0.0 (psutil's first reading), and
    everything psutil measures when it is unavailable; the rest is always there."""
    content = usage_reply(hostname="h", pid=1, cpu_count=2, kernel_cpu=cpu, host_cpu_percent=host)
    assert {"hostname", "pid", "cpu_count"} <= content.keys()
    assert ("kernel_cpu" in content) == (cpu is not None)
    assert ("host_cpu_percent" in content) == bool(host)


def test_meter_without_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psutil the reply is ipykernel's fallback: hostname, pid and os.cpu_count()."""
    import sys

    monkeypatch.setitem(sys.modules, "psutil", None)  # makes ``import psutil`` raise ImportError
    content = UsageMeter().measure()
    assert content == {"hostname": content["hostname"], "pid": os.getpid(), "cpu_count": os.cpu_count()}


# --- over real sockets, both kernels ---------------------------------------------------


def test_usage_reply_keys_match_ipykernel() -> None:
    """Two requests each (the second has a host CPU reading): the same keys, the same types."""
    keys: dict[str, dict[str, type]] = {}
    for name in KERNELS:
        with running_kernel(name) as frontend:
            frontend.control("usage_request")
            reply = frontend.control("usage_request")
            assert reply["msg_type"] == "usage_reply"
            content = reply["content"]
            # psutil's system-wide CPU is 0.0 only when nothing ran between two readings.
            content.pop("host_cpu_percent", None)
            keys[name] = {k: type(v) for k, v in content.items()}
            assert content["pid"] == frontend.km.provisioner.pid
            assert set(content["host_virtual_memory"]) >= {"total", "available", "used"}
    assert keys["trio"] == keys["python3"]


def test_connect_reply_matches_connection_file(any_kernel: Frontend) -> None:
    """connect_request on control and on shell answers the ports the kernel was started on."""
    info = any_kernel.km.get_connection_info()
    expected = {name: info[name] for name in PORT_NAMES}
    on_control = any_kernel.control("connect_request")["content"]
    msg_id = any_kernel.send_shell("connect_request", {})
    on_shell = any_kernel.shell_reply(msg_id)["content"]
    for content in (on_control, on_shell):
        assert content.pop("status") == "ok"
        assert content == expected


def test_cpu_burned_by_a_cell_is_reported(any_kernel: Frontend) -> None:
    """A cell that burns 0.5 s of CPU time between two usage requests: over the wall time
    spanning both requests, ``kernel_cpu`` (percent of one core) accounts for it."""
    any_kernel.control("usage_request")  # baseline: psutil measures CPU since the last call
    start = time.monotonic()
    run(any_kernel, "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass")
    content: dict[str, Any] = any_kernel.control("usage_request")["content"]
    elapsed = time.monotonic() - start
    assert content["kernel_cpu"] / 100 * elapsed >= 0.5 * 0.95, (content["kernel_cpu"], elapsed)


def test_memory_held_by_a_cell_is_reported(any_kernel: Frontend) -> None:
    """200 MiB written by a cell show up in ``kernel_memory``; freeing it gives them back."""
    before = any_kernel.control("usage_request")["content"]["kernel_memory"]
    run(any_kernel, "held = b'x' * (200 * 2**20)")
    holding = any_kernel.control("usage_request")["content"]["kernel_memory"]
    run(any_kernel, "del held")
    after = any_kernel.control("usage_request")["content"]["kernel_memory"]
    assert holding - before >= 190 * MIB
    assert holding - after >= 190 * MIB


def test_child_process_memory_is_counted(any_kernel: Frontend) -> None:
    """A subprocess started by a cell is part of the kernel's usage, as in ipykernel."""
    before = any_kernel.control("usage_request")["content"]["kernel_memory"]
    run(any_kernel, (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "\"import sys; held = b'x' * (200 * 2**20); print('ready', flush=True); sys.stdin.read()\"], "
        "stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "print(child.stdout.readline(), end='')"
    ))
    try:
        during = any_kernel.control("usage_request")["content"]["kernel_memory"]
    finally:
        assert "0" in run(any_kernel, "child.stdin.close(); print(child.wait(timeout=10))")
    assert during - before >= 190 * MIB


def test_usage_answers_while_a_cell_blocks(any_kernel: Frontend) -> None:
    """The panel keeps updating while a cell holds the kernel's main thread: usage_request is
    answered by the I/O thread (ipykernel: its control thread)."""
    msg_id = any_kernel.submit("import time\nprint('blocking', flush=True)\ntime.sleep(30)")
    any_kernel.wait_for_stream(msg_id, "blocking")
    try:
        content = any_kernel.control("usage_request", timeout=5)["content"]
        assert content["pid"] == any_kernel.km.provisioner.pid
    finally:
        any_kernel.control("interrupt_request")
        assert any_kernel.shell_reply(msg_id)["content"]["status"] == "error"
