"""The shell policy is pure: examples of each rule, then a hypothesis state machine that
drives it with arbitrary arrivals and finishes and checks the README's promises after
every step."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kernel._core.enums import RunMode
from kernel._core.policy import Abort, Arrived, Cancel, Failed, Finished, PolicyError, ShellPolicy, Start

Q, T, TH, B = RunMode.QUEUE, RunMode.TASK, RunMode.THREAD, RunMode.BLOCKING


def test_queue_runs_one_at_a_time_in_order() -> None:
    p = ShellPolicy()
    assert p.handle(Arrived(1, Q)) == [Start(1, Q)]
    assert p.handle(Arrived(2, Q)) == []
    assert p.handle(Arrived(3, Q)) == []
    assert p.handle(Finished(1)) == [Start(2, Q)]
    assert p.handle(Finished(2)) == [Start(3, Q)]


def test_tasks_and_threads_start_at_once() -> None:
    p = ShellPolicy()
    p.handle(Arrived(1, Q))
    assert p.handle(Arrived(2, T)) == [Start(2, T)]
    assert p.handle(Arrived(3, TH)) == [Start(3, TH)]


def test_blocking_waits_for_the_queue_and_holds_everything_after_it() -> None:
    p = ShellPolicy()
    p.handle(Arrived(1, Q))
    assert p.handle(Arrived(2, B)) == []
    assert p.handle(Arrived(3, T)) == []
    assert p.handle(Arrived(4, TH)) == []
    assert p.handle(Finished(1)) == [Start(2, B)]
    assert p.handle(Finished(2)) == [Start(3, T), Start(4, TH)]


def test_failure_aborts_waiting_execute_requests_only() -> None:
    p = ShellPolicy()
    p.handle(Arrived(1, Q))
    p.handle(Arrived(2, Q))
    p.handle(Arrived(3, Q, execute=False))  # a comm message or an unknown type: still runs
    p.handle(Arrived(4, Q))
    assert p.handle(Failed(1)) == []
    assert p.handle(Arrived(5, Q)) == [], "received after the failure was handled: not aborted"
    assert p.handle(Finished(1)) == [Abort(2), Abort(4), Start(3, Q)], "aborted replies follow the failed one"
    assert p.handle(Finished(3)) == [Start(5, Q)]


def test_failure_cancels_running_cells_of_its_loop_that_asked() -> None:
    p = ShellPolicy()
    p.handle(Arrived(1, T, cancel_on_error=True))
    p.handle(Arrived(2, T, cancel_on_error=False))
    p.handle(Arrived(3, TH, cancel_on_error=True))
    p.handle(Arrived(4, Q))
    assert p.handle(Failed(4)) == [Cancel(1)]
    assert p.handle(Failed(3)) == [], "a thread cell's failure cancels nothing"


def test_events_for_a_request_that_is_not_running_are_errors() -> None:
    with pytest.raises(PolicyError):
        ShellPolicy().handle(Finished(7))
    with pytest.raises(PolicyError):
        ShellPolicy().handle(Failed(7))


class ShellMachine(RuleBasedStateMachine):
    """Arbitrary arrivals and finishes; the model checks every action the policy takes."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = ShellPolicy()
        self.next_id = 0
        self.arrived: dict[int, Arrived] = {}
        self.order: list[int] = []
        self.started: list[int] = []
        self.aborted: list[int] = []
        self.finished: list[int] = []
        self.running: set[int] = set()
        self.failed: dict[int, list[int]] = {}

    def _apply(self, actions: list[Start | Abort | Cancel]) -> list[Start | Abort | Cancel]:
        for action in actions:
            rid = action.request_id
            if isinstance(action, Start):
                assert rid not in self.started and rid not in self.aborted, "one outcome per request"
                assert action.mode is self.arrived[rid].mode
                assert not self._blocking_running(), "nothing starts while a blocking cell runs"
                if action.mode is B:
                    assert not any(self.arrived[r].mode is Q for r in self.running), "blocking waits for the queue"
                    earlier = [r for r in self._waiting_of(Q) if r < rid and not self._doomed(r)]
                    assert not earlier, "blocking waits for the queued requests before it"
                if action.mode is Q:
                    assert not any(self.arrived[r].mode is Q for r in self.running), "one queued at a time"
                self.started.append(rid)
                self.running.add(rid)
            elif isinstance(action, Abort):
                assert rid not in self.started and rid not in self.aborted, "one outcome per request"
                assert self.arrived[rid].execute, "only execute requests are aborted"
                self.aborted.append(rid)
            else:
                assert rid in self.running and self.arrived[rid].cancel_on_error
        return actions

    def _blocking_running(self) -> bool:
        return any(self.arrived[r].mode is B for r in self.running)

    def _waiting(self) -> list[int]:
        return [r for r in self.order if r not in self.started and r not in self.aborted]

    def _waiting_of(self, mode: RunMode) -> list[int]:
        return [r for r in self._waiting() if self.arrived[r].mode is mode]

    @rule(mode=st.sampled_from(list(RunMode)), execute=st.booleans(), cancel=st.booleans())
    def arrive(self, mode: RunMode, execute: bool, cancel: bool) -> None:
        mode = mode if execute or mode in (Q, T) else Q  # only execute requests have cell modes
        self.next_id += 1
        event = Arrived(self.next_id, mode, execute, cancel and execute)
        self.arrived[event.request_id] = event
        self.order.append(event.request_id)
        holding = self._blocking_running() or any(self.arrived[r].mode is B for r in self._waiting())
        actions = self._apply(self.policy.handle(event))
        if mode in (T, TH) and not holding:
            assert actions == [Start(event.request_id, mode)], "tasks and threads start at once"

    @precondition(lambda self: set(self.running) - set(self.failed))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(set(self.running) - set(self.failed))))
        waiting_execute = [r for r in self._waiting() if self.arrived[r].execute and not self._doomed(r)]
        on_loop = [r for r in self.running if r != rid and self.arrived[r].cancel_on_error
                   and self.arrived[r].mode is not TH]
        actions = self._apply(self.policy.handle(Failed(rid)))
        self.failed[rid] = waiting_execute
        assert not [a for a in actions if isinstance(a, Abort)], "aborted replies wait for the failed reply"
        cancelled = sorted(a.request_id for a in actions if isinstance(a, Cancel))
        assert cancelled == (sorted(on_loop) if self.arrived[rid].mode is not TH else [])

    def _doomed(self, rid: int) -> bool:
        return any(rid in doomed for doomed in self.failed.values())

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.running)))
        self.running.discard(rid)
        self.finished.append(rid)
        actions = self._apply(self.policy.handle(Finished(rid)))
        aborted = [a.request_id for a in actions if isinstance(a, Abort)]
        assert aborted == self.failed.pop(rid, []), "aborted exactly the execute requests received before"
        assert not [a for a in actions if isinstance(a, Cancel)]

    @invariant()
    def queued_requests_start_in_arrival_order(self) -> None:
        queued = [r for r in self.started if self.arrived[r].mode is Q]
        assert queued == sorted(queued)

    @invariant()
    def nothing_is_stuck(self) -> None:
        """When nothing runs, nothing waits: every request gets its outcome."""
        if not self.running:
            assert self._waiting() == []
        for rid in self._waiting():
            assert self._doomed(rid) or rid not in self.started
        assert self.policy.waiting == len(self._waiting())
        assert set(self.policy.running) == self.running


ShellMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestShellPolicy = ShellMachine.TestCase
