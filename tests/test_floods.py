"""Floods over real sockets: queued requests, printed lines and interrupts, all accounted for.

Each test has a kernel of its own (``python -m kernel -f FILE``), talks to it through raw
zmq sockets (jupyter_client's blocking client would be the bottleneck at these volumes)
and bounds every wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests._fuzzhelpers import (
    KernelProcess,
    RawChannel,
    execute_ok,
    kernel_process,
    new_connection_file,
    rss_mb,
    subscribe,
    wait_ready,
)

N_REQUESTS = 10_000
N_LINES = 1_000_000
N_INTERRUPTS = 100
RSS_LIMIT_MB = 500


@pytest.fixture
def flood_kernel(tmp_path: Path) -> Iterator[KernelProcess]:
    path, info = new_connection_file(tmp_path)
    with kernel_process(tmp_path, path) as kp:
        wait_ready(info)
        yield kp


def _execute(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True, **extra}


def test_10k_queued_requests_answered_in_order(flood_kernel: KernelProcess, record_property: Any) -> None:
    assert flood_kernel.info is not None
    with RawChannel(flood_kernel.info) as shell:
        start = time.monotonic()
        sent = []
        for i in range(N_REQUESTS):
            msg = shell.message("execute_request", _execute(f"n = {i}"))
            shell.send_frames(shell.frames(msg))
            sent.append(msg["header"]["msg_id"])
        replies: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while len(replies) < N_REQUESTS:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(replies)} of {N_REQUESTS} replies"
            msg = shell.recv(remaining)
            if msg is not None and msg["msg_type"] == "execute_reply":
                replies.append(msg)
        elapsed = time.monotonic() - start
        assert [r["parent_header"]["msg_id"] for r in replies] == sent
        assert all(r["content"]["status"] == "ok" for r in replies)
        counts = [r["content"]["execution_count"] for r in replies]
        assert counts == list(range(counts[0], counts[0] + N_REQUESTS))
        last = shell.request("execute_request", _execute("", user_expressions={"n": "n"}))
        assert last["content"]["user_expressions"]["n"]["data"]["text/plain"] == str(N_REQUESTS - 1)
    print(f"\nflood: {N_REQUESTS} queued execute requests answered in order in {elapsed:.1f} s")
    record_property("flood_requests", N_REQUESTS)
    record_property("flood_requests_seconds", round(elapsed, 2))


LINE = "{:07d} the quick brown fox jumps over the lazy dog"


def test_a_million_lines_arrive_in_order_with_bounded_memory(flood_kernel: KernelProcess,
                                                             record_property: Any) -> None:
    """1,000,000 printed lines (about 50 MB), all delivered in order; the kernel's RSS stays bounded.

    The reader stalls for the first half second, so the kernel must hold back its writer
    (back-pressure) rather than buffer without limit or drop.
    """
    info = flood_kernel.info
    assert info is not None
    with RawChannel(info) as shell, subscribe(info) as sub:
        start = time.monotonic()
        msg_id = shell.send("execute_request", _execute(
            f"for i in range({N_LINES}):\n    print({LINE!r}.format(i))"))
        peak = rss_mb(flood_kernel.pid)
        stall_until = time.monotonic() + 0.5
        while time.monotonic() < stall_until:
            peak = max(peak, rss_mb(flood_kernel.pid))
            shell.sock.poll(20)  # the reader stalls; the reply may already be waiting
        chunks: list[str] = []
        messages = 0
        deadline = time.monotonic() + 90
        last_sample = 0.0
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no idle after {sum(c.count(chr(10)) for c in chunks)} lines"
            msg = sub.recv(remaining)
            sub.received.clear()
            now = time.monotonic()
            if now - last_sample > 0.05:
                peak, last_sample = max(peak, rss_mb(flood_kernel.pid)), now
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                assert msg["content"]["name"] == "stdout"
                chunks.append(msg["content"]["text"])
                messages += 1
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            else:
                assert msg["msg_type"] in ("status", "execute_input"), msg
        elapsed = time.monotonic() - start
        assert shell.reply_to(msg_id)["content"]["status"] == "ok"
        lines = "".join(chunks).split("\n")
        assert lines[-1] == ""
        lines.pop()
        assert len(lines) == N_LINES
        for i in (0, 1, N_LINES // 2, N_LINES - 1):
            assert lines[i] == LINE.format(i)
        assert lines == [LINE.format(i) for i in range(N_LINES)]
        assert peak < RSS_LIMIT_MB, f"kernel RSS reached {peak:.0f} MB"
        execute_ok(shell)
    print(f"\nflood: {N_LINES} lines in {messages} stream messages, in order, in {elapsed:.1f} s; "
          f"kernel peak RSS {peak:.0f} MB")
    record_property("flood_lines", N_LINES)
    record_property("flood_stream_messages", messages)
    record_property("flood_peak_rss_mb", round(peak, 1))


# Cells that block or await in every run mode; the busy loops end only by interrupt.
STORM_CELLS = [
    "import time\ntime.sleep(0.3)",
    "import trio\nawait trio.sleep(0.3)",
    "# thread\nimport time\ntime.sleep(0.3)",
    "# task\nimport trio\nawait trio.sleep(0.3)",
    "x = 1",
    "while True:\n    pass",
    "# thread\nwhile True:\n    pass",
    "print('tick')",
]


def test_interrupt_storm(flood_kernel: KernelProcess, record_property: Any) -> None:
    """100 interrupts while cells of every mode start and stop: every request answered."""
    info = flood_kernel.info
    assert info is not None
    with RawChannel(info) as shell, RawChannel(info, "control_port") as control, \
            RawChannel(info, "hb_port", zmq.REQ) as hb:
        executes, interrupts = [], []
        start = time.monotonic()
        for i in range(N_INTERRUPTS):
            executes.append(shell.send("execute_request", _execute(
                STORM_CELLS[i % len(STORM_CELLS)], stop_on_error=i % 25 == 0)))
            # Vary the gap (0-48 ms, reading replies meanwhile) so that interrupts land
            # before, during and after cells start, in every run mode.
            shell.recv((i * 7 % 50) / 1000)
            interrupts.append(control.send("interrupt_request", {}))
        extra = 0
        deadline = time.monotonic() + 60
        answered = {m["parent_header"]["msg_id"]: m["content"] for m in shell.received
                    if m["msg_type"] == "execute_reply"}
        next_nudge = time.monotonic() + 1.0
        while len(answered) < len(executes):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(executes) - len(answered)} execute requests unanswered"
            msg = shell.recv(min(remaining, 0.2))
            if msg is not None and msg["msg_type"] == "execute_reply":
                answered[msg["parent_header"]["msg_id"]] = msg["content"]
            if time.monotonic() > next_nudge:
                # a busy-loop cell that started after the last interrupt needs one more
                interrupts.append(control.send("interrupt_request", {}))
                extra += 1
                next_nudge = time.monotonic() + 1.0
        for msg_id in interrupts:
            assert control.reply_to(msg_id, 20)["content"]["status"] == "ok"
        statuses = [answered[m]["status"] for m in executes]
        assert set(statuses) <= {"ok", "error", "aborted"}
        errors = [answered[m] for m in executes if answered[m]["status"] == "error"]
        assert all(e["ename"] == "KeyboardInterrupt" for e in errors), {e["ename"] for e in errors}
        elapsed = time.monotonic() - start
        hb.sock.send(b"ping")
        assert hb.sock.poll(1000), "heartbeat silent after the storm"
        echoed = hb.sock.recv_multipart()
        assert echoed == [b"ping"]
        content = execute_ok(shell, "print('after'); 40 + 2")
        assert content["status"] == "ok"
        execute_ok(shell, "# thread\n1")
        execute_ok(shell, "import trio\nawait trio.sleep(0)")
    summary = {s: statuses.count(s) for s in ("ok", "error", "aborted")}
    print(f"\ninterrupt storm: {len(interrupts)} interrupts ({extra} extra) over {N_INTERRUPTS} cells "
          f"in {elapsed:.1f} s: {summary}")
    record_property("storm_interrupts", len(interrupts))
    record_property("storm_statuses", summary)
