"""IPython options on the kernel's command line (nbclient's and papermill's
``extra_arguments``), profiles, and many kernels sharing one history database."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel._app.ipyconfig import parse
from tests.harness import running_kernel, stdout_of

TRAIT_OPTIONS = [
    "--HistoryManager.hist_file=:memory:",
    "--InteractiveShell.ast_node_interactivity=all",
    "--IPKernelApp.exec_lines=['preset = 7']",
    "--IPKernelApp.extensions=['autoreload']",
]
PROBE = ("h = get_ipython().history_manager\n"
         "print(h.hist_file, preset, get_ipython().ast_node_interactivity,"
         " 'autoreload' in get_ipython().magics_manager.magics['line'])")


def test_parse_sorts_options() -> None:
    options = parse([*TRAIT_OPTIONS, "--profile", "work", "--ipython-dir=/tmp/ipy", "--bogus",
                     "--InteractiveShell.colors", "nocolor", "--Dangling.option"])
    assert str(options.config.HistoryManager.hist_file) == ":memory:"
    assert str(options.config.InteractiveShell.colors) == "nocolor"
    assert options.app_option("exec_lines", None) is not None
    assert (options.profile, options.ipython_dir) == ("work", "/tmp/ipy")
    assert options.ignored == ("--bogus", "--Dangling.option")


@settings(max_examples=200)
@given(st.lists(st.text(max_size=30) | st.sampled_from(["--profile", "--A.b", "--A.b=", "=", "--", "--x.y=[1,"]),
                max_size=6))
def test_parse_never_raises(argv: list[str]) -> None:
    parse(argv)


def test_options_apply_as_under_ipykernel() -> None:
    """The same traitlets options on both kernels: accepted, applied, same result."""
    result = {}
    for name in ("trio", "python3"):
        with running_kernel(name, extra_arguments=TRAIT_OPTIONS) as frontend:
            reply, outputs = frontend.execute(PROBE + "\n1\n2")
            assert reply["content"]["status"] == "ok", name
            result[name] = (stdout_of(outputs), [m["content"]["data"]["text/plain"] for m in outputs
                                                 if m["msg_type"] == "execute_result"])
    assert result["trio"] == result["python3"] == (":memory: 7 all True\n", ["1", "2"])


def test_unknown_options_warn_and_the_kernel_runs() -> None:
    """ipykernel exits on an unknown flag; trio-kernel warns on its stderr and serves."""
    with running_kernel("trio", extra_arguments=["--bogus", "--NoSuchClass.option=1", "--IPKernelApp.quiet=True",
                                                 "--InteractiveShell.no_such_trait=1"]) as frontend:
        reply, outputs = frontend.execute("print('alive')")
        assert reply["content"]["status"] == "ok"
        assert stdout_of(outputs) == "alive\n"


def test_profile_and_ipython_dir(tmp_path: Path) -> None:
    with running_kernel("trio", extra_arguments=["--profile", "work", "--ipython-dir", str(tmp_path)]) as frontend:
        _, outputs = frontend.execute("ip = get_ipython()\nprint(ip.profile, ip.profile_dir.location,"
                                      " ip.history_manager.hist_file)")
    profile, location, hist_file = stdout_of(outputs).split()
    assert profile == "work"
    assert location == str(tmp_path / "profile_work")
    assert hist_file == str(tmp_path / "profile_work" / "history.sqlite")


CELLS_PER_KERNEL = 40
KERNELS_AT_ONCE = 4


def test_many_kernels_share_one_history_database() -> None:
    """Several notebooks at once (nbclient does not pass ``hist_file=:memory:`` to a kernel
    named ``trio``): every kernel's inputs reach the shared database, none is refused
    with ``database is locked``. Cells are sent to all kernels before any reply is read,
    so their history writes overlap."""
    assert os.environ["IPYTHONDIR"]  # one default database for all of them (conftest)
    with ExitStack() as stack:
        frontends = [stack.enter_context(running_kernel("trio")) for _ in range(KERNELS_AT_ONCE)]
        for n in range(CELLS_PER_KERNEL):
            sent = [(f, f.submit(f"value = {n}")) for f in frontends]
            for frontend, msg_id in sent:
                assert frontend.shell_reply(msg_id)["content"]["status"] == "ok"
        counts = []
        for frontend in frontends:
            reply, outputs = frontend.execute(
                "h = get_ipython().history_manager\nh.writeout_cache()\n"
                "print(h.db.execute('select count(*) from history where session = ?',"
                " (h.session_number,)).fetchone()[0])")
            assert reply["content"]["status"] == "ok", outputs
            counts.append(int(stdout_of(outputs)))
    assert counts == [CELLS_PER_KERNEL + 1] * KERNELS_AT_ONCE


def test_profile_config_and_startup_files_as_under_ipykernel(tmp_path: Path) -> None:
    """The profile's ``ipython_config.py``, ``ipython_kernel_config.py`` and ``startup/``
    files are applied by both kernels, the command line winning over the files."""
    profile = tmp_path / "profile_default"
    (profile / "startup").mkdir(parents=True)
    (profile / "ipython_config.py").write_text("c.InteractiveShell.ast_node_interactivity = 'all'\n")
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.exec_lines = ['from_config = from_startup + 1']\n"
        "c.InteractiveShell.colors = 'nocolor'\n")
    (profile / "startup" / "00-first.py").write_text("from_startup = 41\n")
    result = {}
    for name in ("trio", "python3"):
        with running_kernel(name, env_extra={"IPYTHONDIR": str(tmp_path)},
                            extra_arguments=["--InteractiveShell.colors=linux"]) as frontend:
            reply, outputs = frontend.execute("print(from_startup, from_config, get_ipython().colors)\n1\n2")
            assert reply["content"]["status"] == "ok", (name, outputs)
            result[name] = (stdout_of(outputs), [m["content"]["data"]["text/plain"] for m in outputs
                                                 if m["msg_type"] == "execute_result"])
    assert result["trio"] == result["python3"] == ("41 42 linux\n", ["1", "2"])
