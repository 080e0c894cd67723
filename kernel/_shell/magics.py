"""Magics notebook users expect from a kernel, registered on the shell when it is built.

- ``%connect_info``: the connection file's contents and how to attach another client
  (as ipykernel prints it).
- ``%qtconsole``: one clear message instead of starting a Qt console.
- ``%autoawait``: reports trio; on/off work, other loops are refused (cells always run on
  the kernel's own trio loop, a per-cell ``trio.run`` or asyncio loop would break that).
- ``%store``: IPython's storemagic extension, loaded as ipykernel's ``IPKernelApp`` loads it.
- ``%autosave``, ``%clear``, ``%less``/``%more``, ``%man``: ipykernel's kernel magics
  (notebooks carry ``%autosave 0`` lines; without the magic such a cell would fail).

Runs on the thread of the cell that calls the magic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from IPython.core import page
from IPython.core.error import UsageError
from IPython.display import Javascript, display
from IPython.utils import openpy

if TYPE_CHECKING:
    from .._shell.zmqshell import ZMQInteractiveShell

_ON = ("on", "true", "1", "yes", "trio")
_OFF = ("off", "false", "0", "no")


def register(shell: ZMQInteractiveShell) -> None:
    """Register the magics and load storemagic."""

    def connect_info(line: str) -> None:
        """%connect_info: print how to connect another client to this kernel."""
        kernel = shell.kernel
        if kernel is None or not kernel.connection_file:
            print("This kernel has no connection file.")
            return
        print(json.dumps(kernel.connection_info, indent=1) + "\n")
        print("Paste the above JSON into a file, and connect with:\n"
              "    $> jupyter <app> --existing <file>\n"
              "or, if you are local, you can connect with just:\n"
              f"    $> jupyter <app> --existing {kernel.connection_file}")

    def qtconsole(line: str) -> None:
        """%qtconsole: trio-kernel does not start one; say how to attach one."""
        kernel = shell.kernel
        where = kernel.connection_file if kernel is not None else "<connection file>"
        print("trio-kernel does not start a Qt console itself. Attach one to this kernel with:\n"
              f"    $> jupyter qtconsole --existing {where}")

    def autoawait(line: str) -> None:
        """%autoawait [on|off]: top-level await runs on the kernel's trio loop."""
        word = line.strip().lower()
        if not word:
            state = "on" if shell.autoawait else "off"
            print(f"IPython autoawait is `{state}`, and set to use `trio` (the kernel's own loop)")
        elif word in _ON:
            shell.autoawait = True
        elif word in _OFF:
            shell.autoawait = False
        else:
            raise UsageError(f"trio-kernel runs top-level await on its own trio loop; "
                             f"%autoawait takes on or off, not {line.strip()!r}")

    def autosave(line: str) -> None:
        """%autosave SECONDS: ask the classic Notebook to autosave that often (0: never)."""
        try:
            interval = int(line)
        except ValueError:
            raise UsageError(f"%autosave requires an integer, got {line!r}") from None
        display(Javascript(f"IPython.notebook.set_autosave_interval({1000 * interval})"),
                include=["application/javascript"])
        print(f"Autosaving every {interval} seconds" if interval else "Autosave disabled")

    def clear(line: str) -> None:
        """%clear: clear the terminal (what ``clear`` prints reaches the cell)."""
        shell.system("clear")

    def less(line: str) -> None:
        """%less FILE (or %more): show a file in the pager, Python source highlighted."""
        path = line.strip()
        if not path:
            raise UsageError("Missing filename.")
        if path.endswith(".py"):
            text = shell.pycolorize(openpy.read_py_file(path, skip_encoding_cookie=False))
        else:
            text = Path(path).read_text()
        page.page(text)

    def man(line: str) -> None:
        """%man COMMAND: the man page, in the pager."""
        page.page(shell.getoutput(f"man {line} | col -b", split=False))

    for name, function in (("connect_info", connect_info), ("qtconsole", qtconsole), ("autoawait", autoawait),
                           ("autosave", autosave), ("clear", clear), ("less", less), ("more", less),
                           ("man", man)):
        shell.register_magic_function(function, "line", name)  # type: ignore[arg-type]  # IPython's stub
    assert shell.extension_manager is not None
    shell.extension_manager.load_extension("storemagic")
