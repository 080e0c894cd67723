"""fd capture looks into its pipes without a read (and so without a GIL hand-off) when they
are empty, and still forwards what is there.

Runs ``FdCapture`` in a child interpreter (it takes over fds 1 and 2), with a stand-in
shell and cell, counting ``os.read`` calls.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import os, sys
    from kernel._shell import fdcapture
    from kernel._shell.cell import current_cell

    class Events:
        def register(self, *a): pass
        def unregister(self, *a): pass

    class Shell:
        events = Events()

    class IOPub:
        def __init__(self): self.text = []
        def write_stream(self, parent, name, text): self.text.append((name, text))

    class Cell:
        parent = {}
        iopub = IOPub()

    import threading
    main = threading.get_ident()
    reads = []
    real_read = os.read
    def counting_read(fd, n):
        if threading.get_ident() == main:
            reads.append(fd)
        return real_read(fd, n)

    capture = fdcapture.FdCapture(Shell())
    cell = Cell()
    current_cell.set(cell)
    os.read = counting_read
    try:
        capture._on_pre_run_cell(None)
        capture._on_post_run_cell(None)
        capture.drain()
        empty_reads = len(reads)
        os.write(1, b"from fd 1\\n")
        capture.drain()
    finally:
        capture.close()  # forwards what is left and joins the reader thread
        os.read = real_read
    print(empty_reads, cell.iopub.text, file=sys.stderr)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the GIL-holding check is Linux only")
def test_empty_pipes_are_checked_without_reading_and_output_still_arrives() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    empty_reads, forwarded = done.stderr.strip().split(" ", 1)
    assert empty_reads == "0"
    assert forwarded == "[('stdout', 'from fd 1\\n')]"
