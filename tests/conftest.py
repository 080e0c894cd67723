"""Shared fixtures: an isolated Jupyter/IPython environment and kernels over real sockets."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TMP = tempfile.mkdtemp(prefix="trio-kernel-tests-")
os.environ["IPYTHONDIR"] = os.path.join(_TMP, "ipython")
os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(_TMP, "runtime")
# The kernelspec under test is the one `make setup` installed into this venv: put it first,
# and hide the user's own kernelspecs (an older `trio` installed with --user, say).
os.environ["JUPYTER_DATA_DIR"] = os.path.join(_TMP, "data")
os.environ["JUPYTER_PATH"] = os.path.join(sys.prefix, "share", "jupyter")
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

from tests.harness import Frontend, running_kernel  # noqa: E402


@pytest.fixture(scope="module")
def kernel() -> Iterator[Frontend]:
    """One kernel shared by the tests of a module (for tests that leave it usable)."""
    with running_kernel() as frontend:
        yield frontend


@pytest.fixture
def fresh_kernel() -> Iterator[Frontend]:
    """A kernel of the test's own, for tests that break or restart it."""
    with running_kernel() as frontend:
        yield frontend


@pytest.fixture(autouse=True, scope="session")
def _no_leaked_kernels() -> Iterator[None]:
    """Fail the run if a kernel process started by the tests outlives them."""
    before = _kernel_pids()
    yield
    leaked = _kernel_pids() - before
    assert not leaked, f"kernel processes leaked: {sorted(leaked)}"


def _kernel_pids() -> set[int]:
    """Kernel processes that are children of this test process."""
    me = str(os.getpid())
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == me and b"-m" in cmd and b"-f" in cmd:
            pids.add(int(entry.name))
    return pids
