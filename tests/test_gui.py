"""``%gui qt`` and ``%matplotlib qt``: Qt events run on the kernel's trio loop (headless).

Qt runs with ``QT_QPA_PLATFORM=offscreen``. That a Qt callback ran is shown by its effect
(a printed line, a ``trio.Event`` a cell awaits, a file the test waits for), every wait
with a deadline; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TIMEOUT, Frontend, running_kernel, stdout_of
from tests.test_interactive import open_slider, set_value

pytest.importorskip("PySide6")
QT_ENV = {"QT_QPA_PLATFORM": "offscreen"}
PUMP_TASKS = (
    "import trio\n"
    "def task_names(task):\n"
    "    yield task.name\n"
    "    for nursery in task.child_nurseries:\n"
    "        for child in nursery.child_tasks:\n"
    "            yield from task_names(child)\n"
    "print([n for n in task_names(trio.lowlevel.current_root_task()) if 'gui pump' in n])\n"
)


@pytest.fixture(scope="module")
def qt_kernel() -> Iterator[Frontend]:
    with running_kernel(env_extra=QT_ENV) as fe:
        yield fe


def ok(fe: Frontend, code: str) -> tuple[str, dict]:
    reply, outputs = fe.execute(code)
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", errors or reply["content"]
    return stdout_of(outputs), reply


def wait_for_file(path: Path, timeout: float = TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written in {timeout} s")
        time.sleep(0.01)  # polling a side effect, with a deadline
    return path.read_text()


def timer_writes_file_while_idle(fe: Frontend, path: Path) -> str:
    ok(fe, "%gui qt")
    ok(fe, "from PySide6 import QtCore\n"
           f"QtCore.QTimer.singleShot(0, lambda: open({str(path)!r}, 'w').write('fired'))")
    return wait_for_file(path)  # no request in flight: the kernel is idle meanwhile


def test_no_pump_until_gui_is_on(fresh_kernel: Frontend) -> None:
    """With the GUI off there is no pump task: cells cost what they cost before."""
    out, _ = ok(fresh_kernel, PUMP_TASKS)
    assert out == "[]\n"


def test_timer_fires_while_idle(tmp_path: Path) -> None:
    """(ipykernel 7.4, tried side by side: after ``%gui qt`` under the offscreen platform
    its next cell never answers, ``ZMQError: Socket operation on non-socket`` in its log.)"""
    with running_kernel(env_extra=QT_ENV) as ours:
        assert timer_writes_file_while_idle(ours, tmp_path / "fired") == "fired"


def test_callback_output_goes_to_the_gui_cell(qt_kernel: Frontend) -> None:
    _, reply = ok(qt_kernel, "%gui qt")
    ok(qt_kernel, "from PySide6 import QtCore\nQtCore.QTimer.singleShot(0, lambda: print('from Qt'))")
    msg = qt_kernel.iopub_for(reply["parent_header"]["msg_id"])
    assert msg["msg_type"] == "stream" and msg["content"]["text"] == "from Qt\n"


def test_timers_and_posted_events_run_while_a_cell_awaits(qt_kernel: Frontend) -> None:
    ok(qt_kernel, "%gui qt")
    out, _ = ok(qt_kernel, (
        "import trio\n"
        "from PySide6 import QtCore\n"
        "timer_fired, event_seen = trio.Event(), trio.Event()\n"
        "class Receiver(QtCore.QObject):\n"
        "    def event(self, e):\n"
        "        if e.type() == QtCore.QEvent.Type.User:\n"
        "            event_seen.set()\n"
        "            return True\n"
        "        return super().event(e)\n"
        "receiver = Receiver()\n"
        "QtCore.QTimer.singleShot(20, timer_fired.set)\n"
        "QtCore.QCoreApplication.postEvent(receiver, QtCore.QEvent(QtCore.QEvent.Type.User))\n"
        "with trio.fail_after(5):\n"
        "    await timer_fired.wait()\n"
        "    await event_seen.wait()\n"
        "print('both handled')\n"
    ))
    assert out == "both handled\n"


def test_matplotlib_qt_windows_draw_while_a_cell_awaits(qt_kernel: Frontend) -> None:
    ok(qt_kernel, "%matplotlib qt")
    out, _ = ok(qt_kernel, (
        "import trio\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 3, 2])\n"
        "plt.show()  # returns at once: interactive mode\n"
        "drawn = trio.Event()\n"
        "fig.canvas.mpl_connect('draw_event', lambda event: drawn.set())\n"
        "fig.canvas.draw_idle()\n"
        "with trio.fail_after(5):\n"
        "    await drawn.wait()\n"
        "print(plt.get_backend().lower(), fig.canvas.manager.window.isVisible())\n"
        "plt.close(fig)\n"
    ))
    assert out == "qtagg True\n"
    ok(qt_kernel, "%matplotlib inline")  # back to inline: the GUI goes off
    out, _ = ok(qt_kernel, "print(get_ipython().gui_loops.active)")
    assert out == "None\n"


def test_gui_off_ends_the_pump_and_on_again_works(qt_kernel: Frontend) -> None:
    ok(qt_kernel, "%gui qt")
    out, _ = ok(qt_kernel, PUMP_TASKS)
    assert out == "['gui pump (qt)']\n"
    ok(qt_kernel, "%gui")
    out, _ = ok(qt_kernel, PUMP_TASKS)
    assert out == "[]\n"
    ok(qt_kernel, "%gui qt")
    out, _ = ok(qt_kernel, PUMP_TASKS)
    assert out == "['gui pump (qt)']\n"


def test_cells_comms_and_interrupt_keep_working(qt_kernel: Frontend) -> None:
    ok(qt_kernel, "%gui qt")
    comm_id = open_slider(qt_kernel, "gui_slider")
    qt_kernel.outputs_until_idle(set_value(qt_kernel, comm_id, 5))
    out, _ = ok(qt_kernel, "print(gui_slider.value)")
    assert out == "5\n"
    msg_id = qt_kernel.submit("import trio\nprint('sleeping')\nawait trio.sleep(60)")
    qt_kernel.wait_for_stream(msg_id, "sleeping")
    qt_kernel.control("interrupt_request")
    assert qt_kernel.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"
    out, _ = ok(qt_kernel, "print(get_ipython().gui_loops.active)")
    assert out == "qt\n"


def test_unknown_gui_says_what_is_supported(qt_kernel: Frontend) -> None:
    reply, outputs = qt_kernel.execute("%gui wx")
    assert reply["content"]["status"] == "ok"
    stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
    assert "'wx'" in stderr and "qt or tk" in stderr


def test_thread_cells_cannot_turn_the_gui_on(qt_kernel: Frontend) -> None:
    _, outputs = qt_kernel.execute("# thread\n%gui qt")
    stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
    assert "not in `# thread` cells" in stderr


def test_shutdown_with_gui_on_is_clean() -> None:
    with running_kernel(env_extra=QT_ENV) as fe:
        ok(fe, "%gui qt\nfrom PySide6 import QtWidgets\nwindow = QtWidgets.QLabel('hi')\nwindow.show()")
        process = fe.km.provisioner.process  # type: ignore[union-attr]
        started = time.monotonic()
        fe.kc.shutdown()
        assert process.wait(TIMEOUT) == 0
        assert time.monotonic() - started < 5


# Tk, on a virtual X server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    """A private Xvfb display for Tk, stopped after the module's tests."""
    if shutil.which("Xvfb") is None:
        pytest.skip("the Tk tests need Xvfb (apt-get install xvfb)")
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", "640x480x24"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as ready:
            if not select.select([ready], [], [], TIMEOUT)[0]:
                raise TimeoutError("Xvfb did not start")
            yield f":{ready.readline().strip()}"  # written once the server accepts clients
    finally:
        xvfb.terminate()
        xvfb.wait(TIMEOUT)


def tk_timer_writes_file_while_idle(fe: Frontend, path: Path) -> str:
    ok(fe, "%gui tk")
    ok(fe, "import tkinter\nroot = tkinter.Tk()\n"
           f"root.after(0, lambda: open({str(path)!r}, 'w').write('fired'))")
    return wait_for_file(path)


def test_tk_events_run_while_idle_and_while_a_cell_awaits(x_display: str, tmp_path: Path) -> None:
    """(ipykernel 7.4, tried side by side with the same cells: its timer fired too, but under
    load its cell after ``%gui tk`` sometimes never answered, "OSError: Stream is closed"
    in its log; so the comparison is not part of the suite.)"""
    env = {"DISPLAY": x_display}
    with running_kernel(env_extra=env) as ours:
        assert tk_timer_writes_file_while_idle(ours, tmp_path / "ours") == "fired"
        out, _ = ok(ours, "import trio\nmapped = trio.Event()\nlabel = tkinter.Label(root, text='hi')\n"
                          "label.bind('<Map>', lambda event: mapped.set())\nlabel.pack()\n"
                          "with trio.fail_after(10):\n    await mapped.wait()\n"
                          "print(label.winfo_ismapped())")
        assert out == "1\n"  # packed, drawn and mapped by Tk while the cell awaited


def test_tk_without_a_display_says_why(kernel: Frontend) -> None:
    reply, outputs = kernel.execute("import os\nos.environ.pop('DISPLAY', None)\n%gui tk\n"
                                    "print(get_ipython().gui_loops.active)")
    assert reply["content"]["status"] == "ok"
    stderr = "".join(m["content"]["text"] for m in outputs
                     if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    assert stderr.startswith("%gui tk: TclError") and "display" in stderr
    assert stdout_of(outputs) == "None\n"
