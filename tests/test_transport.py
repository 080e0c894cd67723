"""The ipc transport works as well as tcp."""

from __future__ import annotations

from pathlib import Path

from tests.harness import running_kernel, stdout_of


def test_ipc_transport(tmp_path: Path) -> None:
    with running_kernel(transport="ipc", ip=str(tmp_path / "k")) as frontend:
        reply, outputs = frontend.execute("print('over ipc')")
        assert reply["content"]["status"] == "ok"
        assert stdout_of(outputs) == "over ipc\n"
        assert frontend.control("kernel_info_request")["content"]["protocol_version"] == "5.5"
        assert any(p.name.startswith("k-") for p in tmp_path.iterdir())
