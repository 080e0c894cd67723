"""Signing, verification and parsing of frames: round trips and every way to be wrong."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel import Channel
from kernel._core.wire import Outgoing, WireError, decode, encode, make_session

KEY = b"a" * 64
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _frames(content: dict, msg_type: str = "execute_request", key: bytes = KEY) -> list[bytes]:
    session = make_session(key)
    return encode(session, Outgoing(msg_type, content, {}, idents=[b"client-1"]))


@settings(max_examples=150)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_round_trip(content: dict) -> None:
    receiver = make_session(KEY)
    msg = decode(receiver, _frames(content), Channel.SHELL, time.monotonic())
    assert msg.content == content
    assert msg.idents == [b"client-1"]
    assert msg.msg_type == "execute_request"
    assert msg.header["version"] == "5.5"


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=3), st.binary(min_size=1, max_size=4))
def test_any_tampering_is_rejected(part: int, junk: bytes) -> None:
    frames = _frames({"code": "1"})
    delim = frames.index(b"<IDS|MSG>")
    index = delim + 2 + part  # header, parent, metadata or content
    frames[index] = frames[index] + junk
    with pytest.raises(WireError):
        decode(make_session(KEY), frames, Channel.SHELL, 0.0)


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(WireError, match="Invalid Signature"):
        decode(make_session(KEY), _frames({}, key=b"b" * 64), Channel.SHELL, 0.0)


def test_unsigned_is_rejected() -> None:
    frames = _frames({})
    frames[frames.index(b"<IDS|MSG>") + 1] = b""
    with pytest.raises(WireError, match="Unsigned"):
        decode(make_session(KEY), frames, Channel.SHELL, 0.0)


def test_replay_is_rejected() -> None:
    receiver = make_session(KEY)
    frames = _frames({"code": "1"})
    decode(receiver, frames, Channel.SHELL, 0.0)
    with pytest.raises(WireError, match="Duplicate"):
        decode(receiver, frames, Channel.SHELL, 0.0)


@pytest.mark.parametrize("frames", [[], [b"x"], [b"<IDS|MSG>", b"sig"], [b"<IDS|MSG>"] + [b"{}"] * 3])
def test_short_frame_lists_are_rejected(frames: list[bytes]) -> None:
    with pytest.raises(WireError):
        decode(make_session(KEY), frames, Channel.SHELL, 0.0)


@pytest.mark.parametrize(("content", "reason"), [
    (b"[1, 2]", "content is list"),
    (b"\xff{not json", "content is not valid JSON"),
])
def test_signed_but_malformed_content_is_rejected(content: bytes, reason: str) -> None:
    session = make_session(KEY)
    frames = encode(session, Outgoing("execute_request", {}, {}))
    delim = frames.index(b"<IDS|MSG>")
    frames[delim + 5] = content
    frames[delim + 1] = session.sign(frames[delim + 2: delim + 6])
    with pytest.raises(WireError, match=reason):
        decode(make_session(KEY), frames, Channel.SHELL, 0.0)


def test_subshell_id_is_copied_into_reply_headers() -> None:
    session = make_session(KEY)
    frames = encode(session, Outgoing("execute_reply", {}, {"msg_id": "x", "subshell_id": "s1"}))
    msg = decode(make_session(KEY), frames, Channel.SHELL, 0.0)
    assert msg.header["subshell_id"] == "s1"
