"""Drive ``jupyter console`` in a pseudo-terminal against the kernel under test.

This is the terminal-user view of the kernel: prompt_toolkit asks the kernel
``is_complete`` before running a line, the output arrives as ``execute_result``
and leaving the console must shut the kernel down.  The kernelspec comes from
``TRIO_KERNEL_NAME`` (default ``trio``); ``python3`` runs the same test against
ipykernel, which is how the test itself is checked.

Every ``expect`` has its own pexpect timeout, and the kernel processes are
identified by (pid, start time) so a recycled pid cannot pass for a survivor.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests._procs import Process, descendants, wait_gone

if TYPE_CHECKING:
    from collections.abc import Iterator

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive a terminal")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jupyter_console") is None,
    reason="jupyter_console is not installed",
)

KERNEL_NAME = os.environ.get("TRIO_KERNEL_NAME", "trio")
STARTUP_TIMEOUT = 60.0
STEP_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0

# prompt_toolkit colours the prompts, so escape sequences may sit between any
# two tokens of "Out[1]: 2".
_ANSI = r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*"
IN_PROMPT = re.compile(rf"In {_ANSI}\[{_ANSI}\d+{_ANSI}\]:")
OUT_TWO = re.compile(rf"Out{_ANSI}\[{_ANSI}\d+{_ANSI}\]:{_ANSI}2\b")
CONFIRM_EXIT = re.compile(r"really want to exit")

def sleep_then_add() -> str:
    """Return the line to type: an awaited sleep in the kernel's own loop, then 1+1.

    ipykernel runs top-level ``await`` on asyncio, the trio kernel on trio, so
    the line that proves "top-level await works" depends on the kernel.
    """
    if KERNEL_NAME == "python3":
        return "import asyncio; await asyncio.sleep(0.1); 1+1"
    return "import trio; await trio.sleep(0.1); 1+1"


def spawn_console(tmp_path: Path) -> pexpect.spawn:
    """Start ``jupyter console`` for the kernel under test in a fresh pty.

    History and connection files go to ``tmp_path``; CPR is off because
    pexpect does not answer prompt_toolkit's cursor position requests.
    """
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    argv = ["-m", "jupyter_console", "--kernel", KERNEL_NAME]
    with warnings.catch_warnings():
        # Python 3.12+ warns about forkpty() when the test process has threads.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        return pexpect.spawn(
            sys.executable,
            argv,
            env=env,
            encoding="utf-8",
            timeout=STEP_TIMEOUT,
            dimensions=(24, 120),
        )


@pytest.fixture
def console(tmp_path: Path) -> Iterator[pexpect.spawn]:
    """Yield a running console; whatever happens, leave no console or kernel behind."""
    child = spawn_console(tmp_path)
    seen: set[Process] = set()
    try:
        if child.expect([IN_PROMPT, pexpect.EOF], timeout=STARTUP_TIMEOUT) == 1:
            pytest.fail(f"jupyter console --kernel {KERNEL_NAME} ended: {child.before}")
        seen = descendants(child.pid)
        yield child
    finally:
        if child.isalive():
            seen |= descendants(child.pid)
        child.close(force=True)
        for pid, _ in wait_gone(seen, EXIT_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def exit_console(child: pexpect.spawn) -> None:
    """Leave with Ctrl-D, confirming if the console asks, and reap the process.

    EOF on the pty comes a moment before the process exits; ``close()`` would
    kill it if it were still alive then, and ``wait()`` has no timeout, so the
    exit is polled with a deadline instead.
    """
    child.sendcontrol("d")
    if child.expect([CONFIRM_EXIT, pexpect.EOF], timeout=EXIT_TIMEOUT) == 0:
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=EXIT_TIMEOUT)
    deadline = time.monotonic() + EXIT_TIMEOUT
    while child.isalive():
        assert time.monotonic() < deadline, "the console did not exit after EOF"
        time.sleep(0.05)


def test_await_add_and_exit(console: pexpect.spawn) -> None:
    """Top-level await runs, the result shows as Out, and exit shuts the kernel down."""
    kernel_processes = descendants(console.pid)
    assert kernel_processes, "the console started no kernel process"

    console.sendline(sleep_then_add())
    console.expect(OUT_TWO)
    console.expect(IN_PROMPT)
    exit_console(console)

    assert console.exitstatus == 0, f"console exit status {console.exitstatus}"
    survivors = wait_gone(kernel_processes, EXIT_TIMEOUT)
    assert not survivors, f"kernel processes survived the console: {sorted(survivors)}"
