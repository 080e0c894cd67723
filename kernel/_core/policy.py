"""The rules of one shell as a pure state machine: events in, actions out.

No I/O, no trio, no clock. A shell runner feeds ``Arrived`` when the I/O loop hands it a
request, ``Failed`` when a running request's failure is handled (before its reply is
sent) and ``Finished`` when it has been answered; the policy answers with what to do:
``Start`` a request (in its run mode), ``Abort`` one without running it (an ``aborted``
reply), or ``Cancel`` a running one. The runner only carries these out, so everything that decides
*what happens* on a shell is here, tested with ``hypothesis.stateful``
(``tests/test_policy.py``).

The rules (README "Run modes", "Cell options"):

- ``queue`` requests run one at a time, in arrival order.
- ``task`` and ``thread`` requests start at once.
- A ``blocking`` request waits until no queued request runs or waits, then runs alone:
  whatever arrives while it waits or runs is held, and admitted in arrival order when it
  ends. (Tasks and threads that started before it keep running.)
- ``stop_on_error``: when a request that asked for it fails, every *execute* request that
  arrived before and has not started is aborted (they were "received before the failure
  was handled"; their ``aborted`` replies follow the failed request's own reply, so replies
  keep their order), and the running cells on the same loop (not thread cells, which have
  loops of their own) that asked for ``stop_on_error`` are cancelled at once. Other
  waiting requests (comm messages) still run in their turn.

The policy is not thread-safe; its owner serialises calls (a lock in ``ShellRunner``).
"""

from __future__ import annotations

import collections

import attrs

from .._core.enums import RunMode


@attrs.frozen
class Arrived:
    """A request for this shell; ``mode`` is its route's ``how``."""

    request_id: int
    mode: RunMode
    execute: bool = True
    """Only execute requests are aborted by ``stop_on_error``."""
    cancel_on_error: bool = False
    """Cancel it, while it runs, when another cell on its loop fails with stop_on_error."""


@attrs.frozen
class Failed:
    """A running request failed and asked for ``stop_on_error``; its reply is not sent yet."""

    request_id: int


@attrs.frozen
class Finished:
    """A started request has been answered."""

    request_id: int


Event = Arrived | Failed | Finished


@attrs.frozen
class Start:
    request_id: int
    mode: RunMode


@attrs.frozen
class Abort:
    request_id: int


@attrs.frozen
class Cancel:
    request_id: int


Action = Start | Abort | Cancel


class PolicyError(Exception):
    """An event that cannot happen (a finish for a request that is not running)."""


@attrs.define
class ShellPolicy:
    """The state of one shell: what waits, what runs, what a blocking request holds back."""

    queue: collections.deque[Arrived] = attrs.field(factory=collections.deque)
    """Queued requests waiting for their turn, in arrival order."""
    blocking_waiting: Arrived | None = None
    """A blocking request waiting for the queue to drain."""
    held: collections.deque[Arrived] = attrs.field(factory=collections.deque)
    """Requests that arrived while a blocking request waited or ran, in arrival order."""
    running: dict[int, Arrived] = attrs.field(factory=dict)
    doomed: dict[int, list[Arrived]] = attrs.field(factory=dict)
    """Per failed request still running: the requests it aborts once it has been answered."""

    def handle(self, event: Event) -> list[Action]:
        """Apply one event; return the actions, in the order they must be carried out."""
        actions: list[Action] = []
        if isinstance(event, Arrived):
            if self._holding():
                self.held.append(event)
            else:
                self._admit(event, actions)
        elif isinstance(event, Failed):
            failed = self.running.get(event.request_id)
            if failed is None or event.request_id in self.doomed:
                raise PolicyError(f"request {event.request_id} failed but was not running (or failed twice)")
            self._stop_on_error(failed, actions)
        else:
            if self.running.pop(event.request_id, None) is None:
                raise PolicyError(f"request {event.request_id} finished but was not running")
            actions.extend(Abort(r.request_id) for r in self.doomed.pop(event.request_id, []))
        self._pump(actions)
        return actions

    @property
    def waiting(self) -> int:
        """Requests that arrived and have not started nor been aborted."""
        doomed = sum(len(d) for d in self.doomed.values())
        return len(self.queue) + len(self.held) + (self.blocking_waiting is not None) + doomed

    def _holding(self) -> bool:
        return self.blocking_waiting is not None or self._running_mode(RunMode.BLOCKING)

    def _running_mode(self, mode: RunMode) -> bool:
        return any(r.mode is mode for r in self.running.values())

    def _queue_busy(self) -> bool:
        return bool(self.queue) or self._running_mode(RunMode.QUEUE)

    def _start(self, request: Arrived, actions: list[Action]) -> None:
        self.running[request.request_id] = request
        actions.append(Start(request.request_id, request.mode))

    def _admit(self, request: Arrived, actions: list[Action]) -> None:
        """A request that nothing holds back."""
        if request.mode is RunMode.QUEUE:
            if self._queue_busy():
                self.queue.append(request)
            else:
                self._start(request, actions)
        elif request.mode is RunMode.BLOCKING:
            if self._queue_busy():
                self.blocking_waiting = request
            else:
                self._start(request, actions)
        else:
            self._start(request, actions)

    def _pump(self, actions: list[Action]) -> None:
        """Start what may start now, in arrival order."""
        if self._running_mode(RunMode.BLOCKING):
            return
        if self.queue and not self._running_mode(RunMode.QUEUE):
            self._start(self.queue.popleft(), actions)
        if self.blocking_waiting is not None and not self._queue_busy():
            request, self.blocking_waiting = self.blocking_waiting, None
            self._start(request, actions)
        while self.held and not self._holding():
            self._admit(self.held.popleft(), actions)

    def _stop_on_error(self, failed: Arrived, actions: list[Action]) -> None:
        waiting = [*self.queue, *([self.blocking_waiting] if self.blocking_waiting else []), *self.held]
        self.doomed[failed.request_id] = [r for r in waiting if r.execute]
        self.queue = collections.deque(r for r in self.queue if not r.execute)
        if self.blocking_waiting is not None and self.blocking_waiting.execute:
            self.blocking_waiting = None
        self.held = collections.deque(r for r in self.held if not r.execute)
        if failed.mode is not RunMode.THREAD:
            actions.extend(Cancel(r.request_id) for r in self.running.values()
                           if r.cancel_on_error and r.mode is not RunMode.THREAD and r is not failed)
