"""What belongs to the kernel process and what to the cells: log records, file descriptors.

The standalone kernel's own log lines go to its real stderr, never into a cell; the root
logger and fds 1/2 belong to the user's cells (``test_compat_differential`` compares those
with ipykernel). An embedded kernel leaves the application's fds alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import kernel
from tests.harness import running_kernel, stdout_of
from tests.test_embedding import attached


def test_kernel_logs_stay_on_the_process_stderr(tmp_path: Path) -> None:
    log_file = tmp_path / "kernel-stderr.txt"
    with log_file.open("w") as stderr, \
            running_kernel("trio", extra_arguments=["--log-level=INFO", "--bogus"], stderr=stderr) as frontend:
        reply, outputs = frontend.execute(
            "import logging, os\n"
            "logging.getLogger('kernel.test').warning('kernel record from a cell')\n"
            "logging.getLogger('user').warning('user record')\n"
            "os.write(2, b'fd-level\\n')")
        assert reply["content"]["status"] == "ok"
    cell_stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
    process_stderr = log_file.read_text()
    assert "user record" in cell_stderr and "fd-level" in cell_stderr
    assert "kernel record" not in cell_stderr and "[trio-kernel" not in cell_stderr
    assert "kernel ready" in process_stderr and "ignoring command-line argument '--bogus'" in process_stderr
    assert "kernel record from a cell" in process_stderr
    assert "user record" not in process_stderr and "fd-level" not in process_stderr


def _fd_target(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


async def test_embedded_kernel_leaves_the_application_fds_alone() -> None:
    before = (_fd_target(1), _fd_target(2))
    async with kernel.open_kernel() as k, attached(k.connection_file) as client:
        assert (_fd_target(1), _fd_target(2)) == before
        _reply, outputs = await client.run("import os\nos.write(1, b'')\nprint(type(get_ipython()).__name__)")
        assert stdout_of(outputs) == "ZMQInteractiveShell\n"
    assert (_fd_target(1), _fd_target(2)) == before


async def test_embedded_kernel_captures_fds_when_asked() -> None:
    before = (_fd_target(1), _fd_target(2))
    async with kernel.open_kernel(capture_fds=True) as k, attached(k.connection_file) as client:
        assert _fd_target(1) != before[0]
        _reply, outputs = await client.run("import os\nos.write(1, b'from fd 1\\n')\nos.write(2, b'from fd 2\\n');")
        streams = {m["content"]["name"]: m["content"]["text"] for m in outputs if m["msg_type"] == "stream"}
        assert streams == {"stdout": "from fd 1\n", "stderr": "from fd 2\n"}
    assert (_fd_target(1), _fd_target(2)) == before


def test_fd_output_is_not_spliced_into_printed_lines() -> None:
    """A child's line written before a ``print`` comes out before it, whole, every time
    (the print forwards what waits in the pipe first), also when the reader thread is slow
    to get the GIL back."""
    with running_kernel("trio") as frontend:
        reply, outputs = frontend.execute(
            "import os, sys\n"
            "for i in range(30):\n"
            "    os.system('echo child')\n"
            "    print('after')")
        assert reply["content"]["status"] == "ok"
        assert stdout_of(outputs) == "child\nafter\n" * 30


def test_ipykernel_modules_still_import_next_to_the_placeholder() -> None:
    """``sys.modules['ipykernel.zmqshell']`` is a placeholder (for tqdm); code that uses
    ipykernel's own modules in a trio-kernel cell still gets the real ones."""
    with running_kernel("trio") as frontend:
        reply, outputs = frontend.execute(
            "import sys\n"
            "print(type(sys.modules['ipykernel.zmqshell']).__name__)\n"
            "import ipykernel.zmqshell as z\n"
            "print(z.ZMQDisplayPublisher.__name__)\n"
            "from ipykernel.zmqshell import ZMQInteractiveShell as Real\n"
            "import ipykernel.ipkernel, ipykernel.comm\n"
            "print(isinstance(get_ipython(), Real), sys.modules['ipykernel.zmqshell'].__name__)")
        assert reply["content"]["status"] == "ok", outputs
        assert stdout_of(outputs) == "_ZmqshellMarker\nZMQDisplayPublisher\nFalse ipykernel.zmqshell\n"
