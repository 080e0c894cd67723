"""Encoding never loses a message: lone surrogates become U+FFFD, unencodable content a
stand-in, and everything else round-trips unchanged (``kernel._core.wire``)."""

from __future__ import annotations

import json
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel import Channel
from kernel._core.wire import Outgoing, decode, encode, make_session, pack, pack_anyway

KEY = b"k" * 32
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
"""Any code points, lone surrogates included (hypothesis leaves them out by default)."""
LONE = re.compile("[\ud800-\udfff]")


def replaced(value: object) -> object:
    if isinstance(value, str):
        return LONE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replaced(k): replaced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replaced(v) for v in value]
    return value


json_with_surrogates = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(any_text, json_with_surrogates, max_size=5))
def test_any_text_is_sent_with_replacement_characters(content: dict) -> None:
    frames = encode(make_session(KEY), Outgoing("stream", content, {"msg_id": "p"}, idents=[b"c"]))
    for part in frames[3:]:  # header, parent, metadata, content: valid UTF-8 on the wire
        part.decode("utf-8")
    msg = decode(make_session(KEY), frames, Channel.IOPUB, time.monotonic())
    assert msg.content == replaced(content)


@given(any_text.filter(lambda t: not LONE.search(t)))
def test_text_without_surrogates_is_unchanged(text: str) -> None:
    assert json.loads(pack({"text": text})) == {"text": text}


def test_unencodable_reply_content_still_makes_a_reply() -> None:
    cycle: list = []
    cycle.append(cycle)
    stand_in = json.loads(pack_anyway({"status": "ok", "user_expressions": {"x": object()}}))
    assert stand_in["status"] == "ok" and stand_in["user_expressions"]["x"].startswith("<object object")
    broken = json.loads(pack_anyway({"status": "ok", "payload": cycle}))
    assert broken["status"] == "error" and broken["ename"] == "EncodeError"
    frames = encode(make_session(KEY), Outgoing("execute_reply", {"payload": cycle}, {}, idents=[b"c"]))
    assert decode(make_session(KEY), frames, Channel.SHELL, time.monotonic()).content["ename"] == "EncodeError"
