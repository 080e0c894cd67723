"""The iopub outbox: coalescing, batching, ordering and back-pressure, without sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel._core.wire import Outgoing
from kernel._transport.iopub import BATCH_SECONDS, HOLD_SECONDS, MAX_MESSAGE_BYTES, IOPubOutbox


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
    assert box.take_all(final=True)[0].content["text"] == "y"


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
    assert len(box) == 0


async def test_held_text_goes_out_behind_later_messages_in_order_and_at_shutdown() -> None:
    box = IOPubOutbox(trio.lowlevel.current_trio_token())
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "partial")
    box.put(Outgoing("status", {"execution_state": "idle"}, parent))
    assert [o.msg_type for o in box.take_all()] == ["stream", "status"]  # not the last entry: sent
    box.write_stream(parent, "stdout", "again")
    assert [_content(o)["text"] for o in box.take_all(final=True)] == ["again"]


class FakeLoop:
    """Stands in for the I/O loop's token and clock: counts wake-ups, runs them on demand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wakes = 0
        self.deadline: float | None = None
        self._callbacks: list[Callable[[], None]] = []

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        self.wakes += 1
        self._callbacks.append(fn)

    def clock(self) -> float:
        return self.now

    @property
    def woken(self) -> bool:
        return bool(self._callbacks)

    def box(self, **kwargs: Any) -> IOPubOutbox:
        """Built on another thread, as the real one is built on the I/O thread: the test's
        writes are then a writer thread's, which wake the loop through ``run_sync_soon``
        (a put on the loop's own thread is sent at once, see ``LoopWaker``)."""
        made: list[IOPubOutbox] = []
        builder = threading.Thread(target=lambda: made.append(
            IOPubOutbox(self, clock=self.clock, **kwargs)))  # type: ignore[arg-type]
        builder.start()
        builder.join(10)
        return made[0]

    def drain(self, box: IOPubOutbox, final: bool = False) -> list[Outgoing]:
        """What the socket task does when woken (or its deadline passes): take all, then
        ask when to come back (it parks until then, or until woken)."""
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()
        out = box.take_all(final)
        held = box.hold_for()
        self.deadline = None if held is None else self.now + held
        return out


def _texts(out: list[Outgoing]) -> list[str]:
    return [_content(o).get("text", o.msg_type) for o in out]


def test_text_after_silence_goes_out_at_once() -> None:
    loop = FakeLoop()
    box = loop.box()
    box.write_stream({"msg_id": "p"}, "stdout", "hello\n")
    assert loop.wakes == 1
    assert _texts(loop.drain(box)) == ["hello\n"]


def test_a_flood_wakes_the_io_thread_once_per_batch() -> None:
    """After stream text went out, writes only append until the batch is due: 10,000
    lines make no wake-up (a wake per write costs the writer a GIL hand-off each)."""
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    assert _texts(loop.drain(box)) == ["first\n"]
    for i in range(10_000):
        box.write_stream(parent, "stdout", str(i))
        box.write_stream(parent, "stdout", "\n")
    box.write_stream(parent, "stderr", "a warning\n")  # a new run, still no wake-up
    box.write_stream(parent, "stdout", "last\n")
    assert loop.wakes == 1
    held = box.hold_for()
    assert held is not None and 0 < held <= BATCH_SECONDS
    # Looked too early (woken for something else): only the newest run waits for the batch.
    assert _texts(loop.drain(box)) == ["".join(f"{i}\n" for i in range(10_000)), "a warning\n"]
    assert loop.drain(box) == []
    loop.now += BATCH_SECONDS
    assert _texts(loop.drain(box)) == ["last\n"]
    loop.now += BATCH_SECONDS
    assert loop.drain(box) == [] and box.hold_for() is None  # quiet again: the next write wakes
    box.write_stream(parent, "stdout", "later\n")
    assert loop.wakes == 2


def test_a_message_worth_of_text_wakes_before_the_batch_is_due() -> None:
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    loop.drain(box)
    line = "x" * 99 + "\n"
    count = 2 * MAX_MESSAGE_BYTES // len(line)
    for _ in range(count):
        box.write_stream(parent, "stdout", line)
    assert loop.wakes == 2  # one for the first message's worth; more wait for that wake-up
    out = loop.drain(box)
    assert "".join(_texts(out)) == line * count
    assert all(len(text) <= MAX_MESSAGE_BYTES for text in _texts(out))


def test_other_messages_take_the_batched_text_before_them() -> None:
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    loop.drain(box)
    box.write_stream(parent, "stdout", "before\n")
    box.put(Outgoing("display_data", {"data": {"text/plain": "shown"}}, parent))
    box.write_stream(parent, "stdout", "after\n")
    assert loop.wakes == 2  # the display woke the I/O thread
    assert _texts(loop.drain(box)) == ["before\n", "display_data"]  # "after" waits for the batch
    loop.now += BATCH_SECONDS
    assert _texts(loop.drain(box)) == ["after\n"]


def test_flush_sends_what_was_written_now_unfinished_line_included() -> None:
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    loop.drain(box)
    box.write_stream(parent, "stdout", "Your name? ")
    assert loop.wakes == 1
    box.flush_streams()
    assert loop.wakes == 2
    assert _texts(loop.drain(box)) == ["Your name? "]


def test_a_flood_that_ends_mid_line_sends_the_whole_lines_and_holds_the_rest() -> None:
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    loop.drain(box)
    box.write_stream(parent, "stdout", "1\n2\n3")
    loop.now += BATCH_SECONDS
    assert _texts(loop.drain(box)) == ["1\n2\n"]
    box.write_stream(parent, "stdout", "4\n")
    loop.now += BATCH_SECONDS
    assert _texts(loop.drain(box)) == ["34\n"]


_PARENTS = [{"msg_id": "a"}, {"msg_id": "b"}]
_operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from([0, 1]), st.sampled_from(["stdout", "stderr"]),
              st.one_of(st.text(alphabet="ab\n\r\u00e9\ud800\U0001f600", max_size=6), st.text(max_size=4))),
    st.tuples(st.just("huge"), st.sampled_from([0, 1]), st.sampled_from(["stdout", "stderr"]),
              st.sampled_from(["y", "\u00e9", "\ud83d\ude00"])),
    st.tuples(st.just("put"), st.sampled_from([0, 1])),
    st.tuples(st.just("take"), st.sampled_from([0.0, HOLD_SECONDS, BATCH_SECONDS, 1.0])),
    st.tuples(st.just("flush")),
)


def _merged(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Adjacent stream pieces of one stream and parent joined: how a notebook shows them."""
    out: list[tuple[str, str]] = []
    for key, text in items:
        if out and key == out[-1][0] and key.startswith("stream"):
            out[-1] = (key, out[-1][1] + text)
        elif text or not key.startswith("stream"):
            out.append((key, text))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_operation, max_size=40))
def test_everything_written_goes_out_once_in_order_in_bounded_messages(ops: list[tuple[Any, ...]]) -> None:
    """Any mix of writes (surrogates, huge lines, several streams and cells), other
    messages, flushes and takes at any time: every piece of text is sent exactly once,
    in the order written, no message exceeds the size bound, and nothing is left behind
    once the I/O thread comes back when it said it would."""
    loop = FakeLoop()
    box = loop.box(max_pending=1 << 30)
    expected: list[tuple[str, str]] = []
    sent: list[Outgoing] = []
    for op in ops:
        if op[0] in ("write", "huge"):
            _, who, name, text = op
            if op[0] == "huge":
                text = text * (MAX_MESSAGE_BYTES + 3)
            box.write_stream(_PARENTS[who], name, text)
            expected.append((f"stream {who} {name}", text))
        elif op[0] == "put":
            box.put(Outgoing("status", {"execution_state": "idle"}, _PARENTS[op[1]]))
            expected.append((f"status {op[1]}", ""))
        elif op[0] == "flush":
            box.flush_streams()
        else:
            loop.now += op[1]
            sent += loop.drain(box)
    for _ in range(4):  # the socket task runs when woken, or at the deadline it last saw
        if not loop.woken:
            if loop.deadline is None:
                break
            loop.now = max(loop.now, loop.deadline)
        sent += loop.drain(box)
    assert len(box) == 0, "text left behind with no wake-up or deadline to send it"
    got = []
    for out in sent:
        who = "ab".index(out.parent["msg_id"])
        if out.msg_type == "stream":
            text = out.content["text"]
            assert len(text.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES
            assert text, "an empty stream message"
            got.append((f"stream {who} {out.content['name']}", text))
        else:
            got.append((f"{out.msg_type} {who}", ""))
    assert _merged(got) == _merged(expected)


def test_writes_after_close_are_dropped_not_kept() -> None:
    """An abandoned thread that keeps printing after its kernel closed must not grow it."""
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "first\n")
    loop.drain(box)
    box.write_stream(parent, "stdout", "batched\n")  # the newest run, extended without a lock wait
    box.close()
    for _ in range(3):
        box.write_stream(parent, "stdout", "late\n")
    assert box.dropped_after_close == 3
    assert _texts(box.take_all(final=True)) == ["batched\n"]


@pytest.mark.parametrize("wrong", [b"bytes\n", 42, None])
def test_a_write_that_is_not_text_raises_in_the_writer_and_queues_nothing(wrong: Any) -> None:
    """As ``sys.stdout.write`` does; queued, it would break the whole batch when joined."""
    loop = FakeLoop()
    box = loop.box()
    parent = {"msg_id": "p"}
    box.write_stream(parent, "stdout", "before\n")
    with pytest.raises(TypeError, match=f"must be str, not {type(wrong).__name__}"):
        box.write_stream(parent, "stdout", wrong)
    box.write_stream(parent, "stdout", "after\n")
    assert _texts(loop.drain(box)) == ["before\nafter\n"]
