"""The iopub outbox: coalescing, ordering and back-pressure, without sockets."""

from __future__ import annotations

import json
import threading

import pytest
import trio
import trio.testing

from kernel._core.wire import Outgoing
from kernel._transport.iopub import HOLD_SECONDS, MAX_MESSAGE_BYTES, IOPubOutbox


def _content(out: Outgoing) -> dict:
    """Messages put on an outbox are serialised at once (``freeze``); streams at take."""
    return json.loads(out.content) if isinstance(out.content, bytes) else out.content


async def test_writes_coalesce_per_parent_and_stream_in_order() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token())
    a, b = {"msg_id": "a"}, {"msg_id": "b"}
    for text in ("1\n", "2\n"):
        box.write_stream(a, "stdout", text)
    box.write_stream(a, "stderr", "oops\n")
    box.write_stream(b, "stdout", "b\n")
    box.put(Outgoing("status", {"execution_state": "idle"}, a))
    box.write_stream(a, "stdout", "3\n")
    out = box.take_all()
    assert [(o.msg_type, o.parent["msg_id"], _content(o).get("text")) for o in out] == [
        ("stream", "a", "1\n2\n"),
        ("stream", "a", "oops\n"),
        ("stream", "b", "b\n"),
        ("status", "a", None),
        ("stream", "a", "3\n"),
    ]
    assert box.take_all() == []


async def test_large_output_is_split_into_bounded_messages() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token(), max_pending=1 << 30)
    parent = {"msg_id": "p"}
    line = "x" * 1000 + "\n"
    for _ in range(3 * MAX_MESSAGE_BYTES // len(line)):
        box.write_stream(parent, "stdout", line)
    out = box.take_all()
    assert len(out) >= 3
    assert all(len(o.content["text"]) <= MAX_MESSAGE_BYTES for o in out)
    assert "".join(o.content["text"] for o in out) == line * (3 * MAX_MESSAGE_BYTES // len(line))


@pytest.mark.parametrize("text", ["x" * (5 * MAX_MESSAGE_BYTES + 7), "é\ud800€😀" * MAX_MESSAGE_BYTES])
async def test_one_huge_write_is_split_into_bounded_messages(text: str) -> None:
    """A single line far over the bound (one ``print`` of 100 MB, say) is split too."""
    box = IOPubOutbox(trio.lowlevel.current_trio_token(), max_pending=1 << 30)
    box.write_stream({"msg_id": "p"}, "stdout", text)
    out = box.take_all(final=True)
    sizes = [len(o.content["text"].encode("utf-8", "surrogatepass")) for o in out]
    assert max(sizes) <= MAX_MESSAGE_BYTES and len(out) > 1
    assert "".join(o.content["text"] for o in out) == text


async def test_writer_waits_while_too_much_is_pending() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token(), max_pending=10)
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "x" * 11)  # now over the bound
    blocked = threading.Event()
    finished = threading.Event()

    def writer() -> None:
        blocked.set()
        box.write_stream(parent, "stdout", "y")
        finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, writer)
        await trio.to_thread.run_sync(blocked.wait, 5)
        assert not finished.wait(0.2), "the writer should be held back while 11 chars wait"
        assert "".join(o.content["text"] for o in box.take_all()) == "x" * 11
        assert await trio.to_thread.run_sync(finished.wait, 5)
    assert box.take_all()[0].content["text"] == "y"


async def test_close_releases_blocked_writers() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token(), max_pending=1)
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "xx")

    def writer() -> None:
        box.write_stream(parent, "stdout", "y")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, writer)
        await trio.testing.wait_all_tasks_blocked()
        box.close()


async def test_an_unfinished_line_waits_a_moment_for_its_end() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token())
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "answer:")
    assert box.take_all() == []  # "answer:" was just written and has no newline yet
    held = box.hold_for()
    assert held is not None and 0 < held <= HOLD_SECONDS
    box.write_stream(parent, "stdout", " 42\n")
    assert [_content(o)["text"] for o in box.take_all()] == ["answer: 42\n"]
    assert box.hold_for() is None


async def test_held_text_goes_out_behind_later_messages_in_order_and_at_shutdown() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token())
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "partial")
    box.put(Outgoing("status", {"execution_state": "idle"}, parent))
    assert [o.msg_type for o in box.take_all()] == ["stream", "status"]  # not the last entry: sent
    box.write_stream(parent, "stdout", "again")
    assert [_content(o)["text"] for o in box.take_all(final=True)] == ["again"]
