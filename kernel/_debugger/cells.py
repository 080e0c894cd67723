"""Cell file names the debugger and the frontend agree on (pure, no debugpy).

A breakpoint is set on a *file*; a cell has none. JupyterLab's debugger names a cell
``tmpFilePrefix + murmur2(code, hashSeed) + tmpFileSuffix`` (the parameters come from our
``debugInfo`` reply), asks us to write the code there (``dumpCell``) and sets breakpoints on
that path. For the breakpoint to be hit, the cell must be *compiled* under the same name,
which is what ``CellCompiler`` does for every cell the shell runs (so functions defined before
the debugger was switched on are debuggable too). Tracebacks still say ``Cell In[n]``: IPython
maps the name back to the execution count.

The directory is per process (the pid is in its name), shared by every kernel of the process:
a name is a hash of the code, so two kernels that run the same code share one file harmlessly.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

from IPython.core.compilerop import CachingCompiler

HASH_METHOD = "Murmur2"
HASH_SEED = 0x7E1D6A13
SUFFIX = ".py"
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes, seed: int) -> int:
    """MurmurHash2 (32-bit) of ``data``, as JupyterLab computes it over UTF-8 bytes."""
    length = len(data)
    h = (seed ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[end:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def cell_dir() -> Path:
    """This process's directory for cell files (not created here).

    The name contains ``ipykernel_`` because that is what JupyterLab's debugger looks for
    (``path.includes("ipykernel_")``) before it shows a frame or breakpoint in a cell as
    ``Cell [n]`` instead of a temporary file's path. ``trio`` keeps it apart from
    ipykernel's own ``ipykernel_<pid>``.
    """
    return Path(tempfile.gettempdir()) / f"ipykernel_trio_{os.getpid()}"


@functools.lru_cache(maxsize=1)
def _prefix_of(pid: int) -> str:
    return str(cell_dir()) + os.sep


def prefix() -> str:
    """``tmpFilePrefix``: the directory with a trailing separator (computed once per process;
    every cell's compilation asks for it)."""
    return _prefix_of(os.getpid())


def cell_path(code: str) -> str:
    """The file name a cell with source ``code`` is compiled under."""
    return f"{prefix()}{murmur2(code.encode('utf-8'), HASH_SEED)}{SUFFIX}"


def dump_cell(code: str) -> str:
    """Write ``code`` to its cell file and return the path (blocking file I/O)."""
    path = Path(cell_path(code))
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # One directory per process, shared by its kernels: removed when the process ends.
        atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
    path.write_text(code, encoding="utf-8")
    return str(path)


class CellCompiler(CachingCompiler):
    """IPython's compiler, naming each cell after a hash of its raw source."""

    def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
        return cell_path(raw_code)
