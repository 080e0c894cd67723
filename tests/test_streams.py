"""Printed text reaches the frontend while the cell still runs, on trio-kernel and ipykernel.

Batching (``kernel._transport.iopub``) must never keep text back until the cell ends: the
cell below prints, then waits until the test has seen its text, so a kernel that held the
last batch (or the unfinished line) would never let it finish.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Frontend, running_kernel

KERNELS = ("trio", "python3")

CELL = """\
import os, time
{prints}
deadline = time.monotonic() + 30
while not os.path.exists({flag!r}) and time.monotonic() < deadline:
    time.sleep(0.005)
print(' released' if os.path.exists({flag!r}) else ' never released')
"""


@pytest.fixture(scope="module")
def kernels() -> Iterator[dict[str, Frontend]]:
    with running_kernel("trio") as trio_kernel, running_kernel("python3") as ipy_kernel:
        yield {"trio": trio_kernel, "python3": ipy_kernel}


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("prints", [
    "print('waiting', end='')",  # text after silence, an unfinished line
    "for i in range(20_000):\n    print(i)\nprint('waiting', end='')",  # the end of a flood
])
def test_printed_text_arrives_while_the_cell_still_runs(kernels: dict[str, Frontend], name: str,
                                                       prints: str, tmp_path: Path) -> None:
    frontend = kernels[name]
    flag = tmp_path / "release"
    msg_id = frontend.submit(CELL.format(prints=prints, flag=str(flag)))
    expected = "".join(f"{i}\n" for i in range(20_000)) if "range" in prints else ""
    text = ""
    while not text.endswith("waiting"):
        msg = frontend.iopub_for(msg_id, timeout=20)  # TimeoutError: the text was held back
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        assert msg["msg_type"] != "status" or msg["content"]["execution_state"] != "idle", text[-100:]
    assert text == expected + "waiting"
    flag.touch()
    outputs = frontend.outputs_until_idle(msg_id, timeout=30)
    assert "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream") == " released\n"
    assert frontend.shell_reply(msg_id)["content"]["status"] == "ok"
