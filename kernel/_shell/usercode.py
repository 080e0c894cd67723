"""User code, one step at a time: the only place a KeyboardInterrupt may land.

An interrupt that escalates raises ``KeyboardInterrupt`` in running code: by SIGINT on the
main thread, by an asynchronous exception (``PyThreadState_SetAsyncExc``) on a worker
thread. Raised in trio's scheduler or the kernel's bookkeeping it would corrupt them
(``TrioInternalError``, a missing reply), so it must land only while *user* code runs.
A cell's coroutine is user code only while it runs, not while it is suspended in an
``await`` (then its thread runs trio), so the mark cannot cover the whole ``await``.

``run_block`` and ``run_coroutine`` run a block, or drive a cell's coroutine one
``send``/``throw`` at a time, with the mark set exactly around each step:

- ``_resume``/``_exec`` are the only frames with trio's KeyboardInterrupt protection off
  (the SIGINT handler checks it), and the gate's ``in_user_code`` flag is true only around
  them (the interrupter checks it under the gate's lock before raising in a worker thread);
- the coroutine is resumed from C (``list.extend(map(coro.send, ...))``), so the value it
  yields is stored before control comes back to a Python frame: a KeyboardInterrupt that
  arrives just after the step (or just before it) is never lost and never loses a value.
  One that arrives just before a step is thrown in at once; one that arrives just after
  a block is kept on the gate and raised at the cell's next block; one that arrives just
  after a coroutine step, when the cell has started to await, cancels the cell's scope
  (``UserCodeGate.arrived_while_suspended``) as if it had come a moment later, instead of
  waiting for the await to end.

Runs on the thread of the cell's trio loop.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

import trio

from .._control.interrupt import UserCodeGate


@trio.lowlevel.disable_ki_protection
def _resume(coro: types.CoroutineType[Any, Any, Any], box: list[Any], value: Any, error: BaseException | None) -> None:
    if error is not None:
        box.extend(map(coro.throw, (error,)))
    else:
        box.extend(map(coro.send, (value,)))


@trio.lowlevel.disable_ki_protection
def _exec(code: types.CodeType, global_ns: dict[str, Any], local_ns: dict[str, Any], box: list[Any]) -> None:
    box.extend(map(exec, (code,), (global_ns,), (local_ns,)))


@trio.lowlevel.enable_ki_protection
def run_block(gate: UserCodeGate, code: types.CodeType, global_ns: dict[str, Any],
              local_ns: dict[str, Any]) -> None:
    """Run a synchronous block of a cell as one step."""
    box: list[Any] = []
    failure: BaseException | None = None
    step = object()
    try:
        pending = gate.enter(step)
        if pending is not None:
            raise pending
        _exec(code, global_ns, local_ns, box)
    except BaseException as exc:
        failure = exc
    late: BaseException | None = None
    while True:  # clearing the mark, in this frame: what arrives meanwhile is caught here
        try:
            gate.leave(step)
            break
        except BaseException as exc:
            late = late or exc
    if failure is not None:
        if box:  # the block had ended: what arrived belongs to the cell's next step
            gate.keep(failure)
        else:
            raise failure
    if late is not None:
        gate.keep(late)


class UserCoroutine:
    """``await UserCoroutine(gate, coro)`` runs ``coro`` with the mark set per step.

    The coroutine's return value is dropped (a cell block's coroutine returns None).
    """

    def __init__(self, gate: UserCodeGate, coro: types.CoroutineType[Any, Any, Any]) -> None:
        self._gate = gate
        self._coro = coro

    def __await__(self) -> Generator[Any, Any, None]:
        return _drive(self._gate, self._coro)


@trio.lowlevel.enable_ki_protection
def _drive(gate: UserCodeGate, coro: types.CoroutineType[Any, Any, Any]) -> Generator[Any, Any, None]:
    value: Any = None
    error: BaseException | None = None
    while True:
        box: list[Any] = []
        failure: BaseException | None = None
        step = object()
        try:
            pending = gate.enter(step)
            if pending is not None:
                value, error = None, pending
            _resume(coro, box, value, error)
        except BaseException as exc:
            failure = exc
        late: BaseException | None = None
        while True:  # clearing the mark, in this frame: what arrives meanwhile is caught here
            try:
                gate.leave(step)
                break
            except BaseException as exc:
                late = late or exc
        if box:
            # The coroutine is suspended on what it yielded: an interrupt that arrived just
            # after the step cancels the cell (it awaits now); anything else is thrown in
            # when it is resumed.
            for arrived in (failure, late):
                if arrived is not None:
                    gate.arrived_while_suspended(arrived)
            value, error = None, None
            try:
                value = yield box[0]
            except BaseException as exc:
                error = exc
            continue
        if coro.cr_frame is None:  # it returned, or raised ``failure``
            if failure is not None:
                raise failure
            return
        # It was never resumed: what arrived before the step is thrown in at once.
        value, error = None, failure or late
        if error is None:
            raise RuntimeError("a cell coroutine neither ran nor failed")
