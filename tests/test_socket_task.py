"""The iopub socket task over a real zmq pair, on a mock clock: how a wake-up and the
outbox's held-back text work together.

A parked socket task sends from its wake-up callback (``SocketTask._send_woken``). An
unfinished line the outbox holds back must then wait for its deadline: looking at it a
second time at once (by unparking the task) would send it without the rest of its line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
import zmq

from kernel._core.wire import Outgoing
from kernel._transport.iopub import HOLD_SECONDS, IOPubOutbox
from kernel._transport.sockets import LoopWaker, SocketTask

TIMEOUT = 10.0


def _encode(out: Outgoing) -> list[bytes]:
    content = out.content if isinstance(out.content, bytes) else json.dumps(out.content).encode()
    return [out.msg_type.encode(), content]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    context = zmq.Context()
    pub, sub = context.socket(zmq.XPUB), context.socket(zmq.SUB)
    pub.bind("inproc://iopub-test")
    sub.connect("inproc://iopub-test")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.poll(int(TIMEOUT * 1000))  # the subscription has arrived: sends now reach sub
    pub.recv_multipart()
    try:
        yield pub, sub
    finally:
        pub.close(0)
        sub.close(0)
        context.term()


def _received(sub: zmq.Socket[bytes]) -> list[str]:
    texts = []
    while sub.poll(0):
        kind, content = sub.recv_multipart()
        assert kind == b"stream"
        texts.append(json.loads(content)["text"])
    return texts


async def test_a_line_held_back_waits_for_its_end_not_for_the_next_look(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]], mock_clock: trio.testing.MockClock) -> None:
    pub, sub = pair
    box = IOPubOutbox(LoopWaker(trio.lowlevel.current_trio_token()), clock=mock_clock.current_time)
    task = SocketTask(pub, "iopub")
    parent: dict[str, str] = {"msg_id": "cell"}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.run, lambda frames: None, box, _encode)
        await trio.testing.wait_all_tasks_blocked()  # parked
        # From another thread, as a cell writes: the wake-up reaches the parked task.
        await trio.to_thread.run_sync(box.write_stream, parent, "stdout", "unfinished")
        await trio.testing.wait_all_tasks_blocked()
        await trio.to_thread.run_sync(box.write_stream, parent, "stdout", " line\n")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(HOLD_SECONDS * 2)  # the held line's deadline passes
        await trio.testing.wait_all_tasks_blocked()  # the task sent it and parked again
        nursery.cancel_scope.cancel()
    assert sub.poll(int(TIMEOUT * 1000))  # inproc: delivered once sent
    assert _received(sub) == ["unfinished line\n"]
