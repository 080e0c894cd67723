"""Outboxes of one loop share one wake-up: the unit tests of ``LoopWaker``.

A wake-up is a syscall that hands the GIL to the woken thread; a cell's busy, reply and
idle go to two outboxes, so sharing the waker is what keeps it to one per burst.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import trio

from kernel._core.wire import Outgoing
from kernel._transport.sockets import LoopWaker, Outbox

TIMEOUT = 10.0


class _CountingToken:
    """Stands in for a ``TrioToken``: counts wake-ups and runs them when told."""

    def __init__(self) -> None:
        self.scheduled: list[Callable[[], object]] = []

    def run_sync_soon(self, fn: Callable[[], object], *args: Any) -> None:
        self.scheduled.append(fn)

    def run_all(self) -> None:
        scheduled, self.scheduled = self.scheduled, []
        for fn in scheduled:
            fn()


def _in_other_thread(fn: Callable[[], object]) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive()


def _status(state: str) -> Outgoing:
    return Outgoing("status", {"execution_state": state}, {})


def test_a_burst_to_two_outboxes_costs_one_wake_up() -> None:
    token = _CountingToken()
    waker = LoopWaker(token)  # type: ignore[arg-type]  # duck-typed token
    iopub, shell = Outbox[Outgoing](waker), Outbox[Outgoing](waker)
    woken: list[str] = []
    iopub.bind_waker(lambda: woken.append("iopub"))
    shell.bind_waker(lambda: woken.append("shell"))

    def cell() -> None:  # what a cell sends, from the shell's thread
        iopub.put(_status("busy"))
        iopub.put(Outgoing("execute_input", {"code": "pass"}, {}))
        shell.put(Outgoing("execute_reply", {"status": "ok"}, {}))
        iopub.put(_status("idle"))

    _in_other_thread(cell)
    assert len(token.scheduled) == 1
    token.run_all()
    assert sorted(woken) == ["iopub", "shell"]
    assert [o.msg_type for o in iopub.take_all()] == ["status", "execute_input", "status"]
    # The next burst, after the loop ran the wake-up, wakes it again.
    _in_other_thread(lambda: shell.put(Outgoing("execute_reply", {"status": "ok"}, {})))
    assert len(token.scheduled) == 1


def test_a_put_on_the_loops_own_thread_needs_no_wake_up() -> None:
    token = _CountingToken()
    waker = LoopWaker(token)  # type: ignore[arg-type]
    box = Outbox[Outgoing](waker)
    woken = []
    box.bind_waker(lambda: woken.append(True))
    box.put(_status("busy"))
    assert woken == [True]
    assert token.scheduled == []


def test_a_failing_wake_callback_does_not_end_the_loop() -> None:
    token = _CountingToken()
    waker = LoopWaker(token)  # type: ignore[arg-type]
    box, other = Outbox[Outgoing](waker), Outbox[Outgoing](waker)

    def broken() -> None:
        raise RuntimeError("boom")

    reached = []
    box.bind_waker(broken)
    other.bind_waker(lambda: reached.append(True))
    def puts() -> None:
        box.put(_status("busy"))
        other.put(_status("busy"))

    _in_other_thread(puts)
    token.run_all()  # would raise out of a run_sync_soon callback, ending the loop
    assert reached == [True]


async def test_wake_ups_reach_a_real_loop_from_another_thread() -> None:
    waker = LoopWaker(trio.lowlevel.current_trio_token())
    box = Outbox[Outgoing](waker)
    woken = trio.Event()
    box.bind_waker(woken.set)
    await trio.to_thread.run_sync(box.put, _status("busy"))
    with trio.fail_after(TIMEOUT):
        await woken.wait()


def test_a_holding_thread_wakes_once_when_it_lets_go() -> None:
    token = _CountingToken()
    waker = LoopWaker(token)  # type: ignore[arg-type]
    iopub, shell = Outbox[Outgoing](waker), Outbox[Outgoing](waker)
    iopub.bind_waker(lambda: None)
    shell.bind_waker(lambda: None)
    seen: list[int] = []

    def answer() -> None:  # what a shell does for a request: busy, [cell], reply, idle
        with waker.holding():
            iopub.put(_status("busy"))
            seen.append(len(token.scheduled))  # held: nothing scheduled yet
            with waker.released():  # the cell's code: what it sends goes out at once
                seen.append(len(token.scheduled))  # the busy went out as the cell began
            token.run_all()
            shell.put(Outgoing("execute_reply", {"status": "ok"}, {}))
            iopub.put(_status("idle"))
            seen.append(len(token.scheduled))
        seen.append(len(token.scheduled))

    _in_other_thread(answer)
    assert seen == [0, 1, 0, 1]


def test_holding_is_per_thread() -> None:
    token = _CountingToken()
    waker = LoopWaker(token)  # type: ignore[arg-type]
    box = Outbox[Outgoing](waker)
    box.bind_waker(lambda: None)
    with waker.holding():  # this thread holds; another thread's put still wakes the loop
        _in_other_thread(lambda: box.put(_status("busy")))
        assert len(token.scheduled) == 1
