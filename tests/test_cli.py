"""The command line: clear errors, kernelspec management, the published table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kernel

RUN = [sys.executable, "-m", "kernel"]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=timeout)


def test_missing_connection_file_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("-f", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"trio-kernel: connection file not found: {tmp_path / 'nope.json'}"]


@pytest.mark.parametrize("text", ["{not json", "[]", '{"shell_port": "x"}', '{"transport": "udp"}'])
def test_malformed_connection_file_is_one_clear_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = _run("-f", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("trio-kernel: ")
    assert "Traceback" not in result.stderr


def test_version_and_help() -> None:
    assert _run("--version").stdout.strip() == f"trio-kernel {kernel.__version__}"
    help_text = _run("--help").stdout
    for command in ("install", "uninstall", "list", "routes", "run"):
        assert command in help_text


def test_install_list_uninstall_in_a_prefix(tmp_path: Path) -> None:
    result = _run("install", "--prefix", str(tmp_path), "--name", "trio-test", "--display-name", "T",
                  "--env", "FOO=bar", "--default-mode", "task")
    assert result.returncode == 0, result.stderr
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "trio-test"
    assert str(spec_dir) in result.stdout
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and Path(spec["argv"][0]).is_absolute()
    assert spec["argv"][1:4] == ["-P", "-m", "kernel"] and "{connection_file}" in spec["argv"]
    assert spec["argv"][spec["argv"].index("--default-mode") + 1] == "task"
    assert spec["env"] == {"FOO": "bar"} and spec["display_name"] == "T"
    assert spec["language"] == "python" and spec["interrupt_mode"] == "message"


def test_installed_spec_is_listed() -> None:
    listing = _run("list").stdout
    assert any(line.split()[0] == "trio" for line in listing.splitlines() if line.strip())


def test_routes_prints_the_table() -> None:
    table = _run("routes").stdout
    assert "execute_request" in table and "thread" in table and "interrupt_request" not in table.split("->")[0]


def test_bad_env_pair_is_rejected(tmp_path: Path) -> None:
    result = _run("install", "--prefix", str(tmp_path), "--env", "novalue")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "conn.json"
        path.write_text(json.dumps({"ip": "127.0.0.1", "transport": "tcp", "key": "k",
                                    "signature_scheme": "hmac-sha256", "shell_port": 0, "iopub_port": 0,
                                    "stdin_port": 0, "control_port": port, "hb_port": 0}))
        result = _run("-f", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("trio-kernel: cannot bind")
    assert "Traceback" not in result.stderr


def test_a_folder_named_kernel_beside_the_notebook_does_not_shadow_the_kernel(tmp_path: Path) -> None:
    """A notebook's directory with its own ``kernel`` package and a local module: the kernel
    starts (the kernelspec's ``-P``), and cells import the local module as under ipykernel."""
    from tests.harness import running_kernel, stdout_of

    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "__init__.py").write_text("raise ImportError('the notebook folder shadowed trio-kernel')\n")
    (tmp_path / "helpers_beside_notebook.py").write_text("VALUE = 42\n")
    with running_kernel(cwd=str(tmp_path)) as frontend:
        reply, outputs = frontend.execute("import helpers_beside_notebook\nprint(helpers_beside_notebook.VALUE)")
    assert reply["content"]["status"] == "ok", outputs
    assert stdout_of(outputs) == "42\n"
