"""History is stored in sqlite and survives a kernel restart; --no-history keeps it in memory."""

from __future__ import annotations

import uuid

from tests.harness import Frontend, running_kernel


def _search(frontend: Frontend, pattern: str) -> list[list]:
    msg_id = frontend.send_shell("history_request", {"hist_access_type": "search", "pattern": pattern,
                                                     "raw": True, "output": False, "unique": False})
    reply = frontend.shell_reply(msg_id)
    assert reply["content"]["status"] == "ok"
    return reply["content"]["history"]


def test_history_survives_a_restart(fresh_kernel: Frontend) -> None:
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    fresh_kernel.execute(f"{marker} = 1")
    assert [entry[2] for entry in _search(fresh_kernel, f"{marker}*")] == [f"{marker} = 1"]
    fresh_kernel.km.restart_kernel(now=False)
    fresh_kernel.kc.wait_for_ready(timeout=20)
    entries = _search(fresh_kernel, f"{marker}*")
    assert [entry[2] for entry in entries] == [f"{marker} = 1"]
    tail = fresh_kernel.shell_reply(fresh_kernel.send_shell(
        "history_request", {"hist_access_type": "tail", "n": 5, "raw": True, "output": False}))
    assert tail["content"]["status"] == "ok"


def test_no_history_keeps_nothing_on_disk() -> None:
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    with running_kernel(env_extra={"TRIO_KERNEL_NO_HISTORY": "1"}) as first:
        first.execute(f"{marker} = 1")
        assert _search(first, f"{marker}*")
    with running_kernel() as second:
        assert _search(second, f"{marker}*") == []


def test_stored_tracebacks_are_bounded(kernel: Frontend) -> None:
    from kernel._shell.execution import KEPT_TRACEBACKS

    for _ in range(3):
        kernel.execute("1/0")
    _, outputs = kernel.execute(
        "hm = get_ipython().history_manager\n"
        f"hm.exceptions.update({{-i: {{}} for i in range(1, {KEPT_TRACEBACKS} + 10)}})\n"
        "print(len(hm.exceptions))")
    reply, _ = kernel.execute("1/0")
    assert reply["content"]["status"] == "error"
    # The oldest entries (the made-up negative counts) went; the four real failures stayed.
    _, outputs = kernel.execute("print(len(hm.exceptions), sum(k > 0 for k in hm.exceptions))")
    assert "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream") == (
        f"{KEPT_TRACEBACKS} 4\n")
