"""Tests of the pure schema check in `tests.msgspec`.

Hand-written valid and invalid messages for every msg_type (each invalid one proves the
check can fail), then hypothesis properties over the minimal valid samples: removing any
field a sample holds, or giving it a value of another JSON kind, is always reported; extra
fields never are; and no input, however malformed, makes the check raise.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import msgspec

Message = dict[str, Any]
Path = tuple[str | int, ...]

DATE = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def header(msg_type: str) -> dict[str, Any]:
    """A header as ``Session.deserialize`` returns it, with the date already parsed."""
    return {
        "msg_id": f"id-{msg_type}",
        "session": "session-1",
        "username": "user",
        "date": DATE,
        "msg_type": msg_type,
        "version": "5.5",
    }


def message(msg_type: str, content: Any) -> Message:
    """A whole message; a reply gets its request's header as parent, as on the wire."""
    is_reply = msg_type.endswith("_reply")
    request = msg_type.removesuffix("_reply") + "_request"
    return {
        "header": header(msg_type),
        "msg_id": f"id-{msg_type}",
        "msg_type": msg_type,
        "parent_header": header(request) if is_reply else {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


ERROR = {"status": "error", "ename": "ValueError", "evalue": "boom", "traceback": ["tb"]}
LANGUAGE_INFO = {
    "name": "python",
    "version": "3.11.7",
    "mimetype": "text/x-python",
    "file_extension": ".py",
}
KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.5",
    "implementation": "trio-kernel",
    "implementation_version": "0.1.0",
    "language_info": LANGUAGE_INFO,
    "banner": "hello",
    "help_links": [{"text": "Python", "url": "https://docs.python.org"}],
}
DAP_RESPONSE = {
    "seq": 2,
    "type": "response",
    "request_seq": 1,
    "success": True,
    "command": "debugInfo",
}

# Every field in these contents is required, which the hypothesis properties rely on, so
# free-form dicts (MIME bundles, comms, metadata) are left empty.
MINIMAL: list[tuple[str, dict[str, Any]]] = [
    (
        "execute_reply",
        {
            "status": "ok",
            "execution_count": 1,
            "user_expressions": {},
            "payload": [{"source": "page", "data": {"text/plain": "doc"}, "start": 0}],
        },
    ),
    ("execute_reply", {**ERROR, "execution_count": 1}),
    ("execute_reply", {"status": "aborted"}),
    ("inspect_reply", {"status": "ok", "found": True, "data": {}, "metadata": {}}),
    ("inspect_reply", ERROR),
    (
        "complete_reply",
        {"status": "ok", "matches": ["zip"], "cursor_start": 0, "cursor_end": 2, "metadata": {}},
    ),
    ("history_reply", {"status": "ok", "history": [[1, 2, "6*7"]]}),
    ("is_complete_reply", {"status": "complete"}),
    ("is_complete_reply", {"status": "incomplete", "indent": "    "}),
    ("comm_info_reply", {"status": "ok", "comms": {}}),
    ("kernel_info_reply", KERNEL_INFO),
    ("shutdown_reply", {"status": "ok", "restart": False}),
    ("interrupt_reply", {"status": "ok"}),
    ("debug_reply", DAP_RESPONSE),
    ("create_subshell_reply", {"status": "ok", "subshell_id": "s1"}),
    ("delete_subshell_reply", {"status": "ok"}),
    ("list_subshell_reply", {"status": "ok", "subshell_id": ["s1"]}),
    (
        "connect_reply",
        {"status": "ok", "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "hb_port": 4, "control_port": 5},
    ),
    ("usage_reply", {"hostname": "h", "pid": 1, "cpu_count": 2}),
    ("input_request", {"prompt": "> ", "password": False}),
    ("status", {"execution_state": "busy"}),
    ("stream", {"name": "stdout", "text": "hello, world\n"}),
    ("display_data", {"data": {}, "metadata": {}}),
    (
        "update_display_data",
        {"data": {}, "metadata": {}, "transient": {"display_id": "d1"}},
    ),
    ("execute_input", {"code": "6*7", "execution_count": 1}),
    ("execute_result", {"execution_count": 1, "data": {}, "metadata": {}}),
    ("error", {"ename": "ValueError", "evalue": "boom", "traceback": ["tb"]}),
    ("clear_output", {"wait": False}),
    ("debug_event", {"seq": 1, "type": "event", "event": "stopped"}),
    ("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}}),
    ("comm_msg", {"comm_id": "c1", "data": {}}),
    ("comm_close", {"comm_id": "c1", "data": {}}),
    ("iopub_welcome", {"subscription": ""}),
]

# Optional fields, filled in: still valid.
FULLER: list[tuple[str, dict[str, Any]]] = [
    (
        "kernel_info_reply",
        {
            **KERNEL_INFO,
            "debugger": False,
            "supported_features": ["kernel subshells", "debugger"],
            "language_info": {
                **LANGUAGE_INFO,
                "pygments_lexer": "ipython3",
                "codemirror_mode": {"name": "ipython", "version": 3},
                "nbconvert_exporter": "python",
            },
        },
    ),
    (
        "execute_reply",
        {
            "status": "ok",
            "execution_count": 3,
            "user_expressions": {"x": {"status": "ok", "data": {}, "metadata": {}}},
            "payload": [
                {"source": "set_next_input", "text": "x = 1", "replace": False},
                {"source": "edit_magic", "filename": "a.py", "line_number": 1},
                {"source": "ask_exit", "keepkernel": True},
                {"source": "something_new", "anything": 1},
            ],
        },
    ),
    ("execute_reply", {"status": "aborted", "execution_count": 4}),
    ("history_reply", {"status": "ok", "history": [[1, 2, ["6*7", "42"]], [1, 3, ["x", None]]]}),
    (
        "display_data",
        {
            "data": {"image/png": "iVBOR", "application/vnd.custom+json": {"a": 1}},
            "metadata": {"image/png": {"width": 1}},
            "transient": {"display_id": "d1"},
        },
    ),
    ("debug_reply", {**DAP_RESPONSE, "message": "m", "body": {"isStarted": False}}),
    ("debug_event", {"seq": 1, "type": "event", "event": "stopped", "body": {"threadId": 1}}),
    ("comm_open", {"comm_id": "c", "target_name": "t", "data": {}, "target_module": None}),
    ("status", {"execution_state": "starting"}),
    ("comm_info_reply", {"status": "ok", "comms": {"c1": {"target_name": "t"}}}),
    ("execute_result", {"execution_count": 1, "data": {"text/plain": "42"}, "metadata": {}}),
    ("stream", {"name": "stderr", "text": ""}),
    ("shutdown_reply", ERROR),
]

INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "execute_reply",
        {"status": "ok", "execution_count": "1", "user_expressions": {}, "payload": []},
        "content.execution_count: expected int, got str",
    ),
    (
        "execute_reply",
        {"status": "ok", "execution_count": True, "user_expressions": {}, "payload": []},
        "content.execution_count: expected int, got bool",
    ),
    (
        "execute_reply",
        {**ERROR, "execution_count": 1, "traceback": "tb"},
        "content.traceback: expected list",
    ),
    ("execute_reply", {"status": "done", "execution_count": 1}, "content.status: expected one"),
    (
        "execute_reply",
        {
            "status": "ok",
            "execution_count": 1,
            "user_expressions": {},
            "payload": [{"source": "page", "data": {"text/html": "<b>"}, "start": 0}],
        },
        "content.payload[0].data.text/plain: missing",
    ),
    (
        "inspect_reply",
        {"status": "ok", "found": "yes", "data": {}, "metadata": {}},
        "content.found: expected bool",
    ),
    (
        "inspect_reply",
        {"status": "ok", "found": True, "data": {"plain": "x"}, "metadata": {}},
        "content.data: key 'plain' is not a MIME type",
    ),
    (
        "complete_reply",
        {"status": "ok", "matches": [1], "cursor_start": 0, "cursor_end": 0, "metadata": {}},
        "content.matches[0]: expected str",
    ),
    (
        "history_reply",
        {"status": "ok", "history": [[1, 2]]},
        "content.history[0]: expected a 3-item list",
    ),
    (
        "history_reply",
        {"status": "ok", "history": [[1, 2, ["in", 3]]]},
        "content.history[0][2][1]: expected str or NoneType",
    ),
    ("is_complete_reply", {"status": "incomplete"}, "content.indent: missing"),
    ("is_complete_reply", {"status": "ok"}, "content.status: expected one of"),
    (
        "comm_info_reply",
        {"status": "ok", "comms": {"c1": {}}},
        "content.comms.c1.target_name: missing",
    ),
    (
        "kernel_info_reply",
        {**KERNEL_INFO, "language_info": {**LANGUAGE_INFO, "file_extension": "py"}},
        "content.language_info.file_extension: expected '.ext'",
    ),
    (
        "kernel_info_reply",
        {**KERNEL_INFO, "help_links": [{"text": "Python"}]},
        "content.help_links[0].url: missing",
    ),
    (
        "kernel_info_reply",
        {**KERNEL_INFO, "protocol_version": "4.1"},
        "content.protocol_version: expected a 5.x version",
    ),
    (
        "kernel_info_reply",
        {**KERNEL_INFO, "supported_features": "debugger"},
        "content.supported_features: expected list",
    ),
    (
        "kernel_info_reply",
        {**KERNEL_INFO, "debugger": "no"},
        "content.debugger: expected bool",
    ),
    ("shutdown_reply", {"status": "ok"}, "content.restart: missing"),
    ("interrupt_reply", {}, "content.status: missing"),
    (
        "interrupt_reply",
        {"status": "error", "ename": "E", "evalue": "v"},
        "content.traceback: missing",
    ),
    ("debug_reply", {**DAP_RESPONSE, "type": "event"}, "content.type: expected one of"),
    ("create_subshell_reply", {"status": "ok"}, "content.subshell_id: missing"),
    ("delete_subshell_reply", {"status": None}, "content.status: expected one of"),
    (
        "list_subshell_reply",
        {"status": "ok", "subshell_id": "s1"},
        "content.subshell_id: expected list",
    ),
    ("connect_reply", {"status": "ok", "shell_port": 1}, "content.iopub_port: missing"),
    ("usage_reply", {"hostname": "h", "pid": 1, "cpu_count": 2, "kernel_memory": 1.5},
     "content.kernel_memory: expected int"),
    ("input_request", {"prompt": "> "}, "content.password: missing"),
    ("status", {"execution_state": "busy!"}, "content.execution_state: expected one of"),
    ("stream", {"name": "stdin", "text": "x"}, "content.name: expected one of"),
    (
        "display_data",
        {"data": {"text/plain": 1}, "metadata": {}},
        "content.data.text/plain: expected str",
    ),
    (
        "display_data",
        {"data": {}, "metadata": {}, "transient": {"display_id": 3}},
        "content.transient.display_id: expected str",
    ),
    (
        "update_display_data",
        {"data": {}, "metadata": {}, "transient": {}},
        "content.transient.display_id: missing",
    ),
    ("execute_input", {"code": "1"}, "content.execution_count: missing"),
    (
        "execute_result",
        {"execution_count": 1, "data": [], "metadata": {}},
        "content.data: expected dict",
    ),
    (
        "error",
        {"ename": "E", "evalue": "v", "traceback": [1]},
        "content.traceback[0]: expected str",
    ),
    ("clear_output", {"wait": "yes"}, "content.wait: expected bool"),
    ("debug_event", {"seq": 1, "type": "event"}, "content.event: missing"),
    ("comm_open", {"comm_id": "c", "data": {}}, "content.target_name: missing"),
    ("comm_msg", {"comm_id": 1, "data": {}}, "content.comm_id: expected str"),
    ("comm_close", {"comm_id": "c"}, "content.data: missing"),
    ("iopub_welcome", {}, "content.subscription: missing"),
]


def ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [f"{case[0]}-{i}" for i, case in enumerate(cases)]


def dotted(path: Path) -> str:
    """A path in the notation problems use: ``content.help_links[0].url``."""
    text = str(path[0])
    for key in path[1:]:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text


def paths(value: Any, path: Path) -> Iterator[Path]:
    """Every dict key and list index below `value`, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, sub in items:
        yield (*path, key)
        if isinstance(sub, dict | list):
            yield from paths(sub, (*path, key))


def field_paths(msg: Message) -> list[Path]:
    """The header and content paths of a minimal sample, all of them required."""
    return [*paths(msg["header"], ("header",)), *paths(msg["content"], ("content",))]


def parent_of(msg: Message, path: Path) -> Any:
    node: Any = msg
    for key in path[:-1]:
        node = node[key]
    return node


def is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


# A fixed alphabet: the check cares about kinds, not characters, and a fixed alphabet spares
# hypothesis building its unicode tables, which can trip its too_slow health check on CI.
TEXT = st.text(st.sampled_from(string.printable + "é☃\u2028"), max_size=12)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
KINDS = {
    "NoneType": st.none(),
    "bool": st.booleans(),
    "int": st.integers(),
    "float": st.floats(allow_nan=False),
    "str": TEXT.filter(lambda s: not is_iso(s)),
    "list": st.lists(JSON_SCALARS, max_size=3),
    "dict": st.dictionaries(TEXT, JSON_SCALARS, max_size=3),
}
ALSO_VALID: dict[str, set[str]] = {
    # A history entry's third item is the input, or an (input, output) pair.
    "content.history[0][2]": {"list"},
    # usage_reply: os.cpu_count() is None when the count cannot be determined.
    "content.cpu_count": {"NoneType"},
}


@pytest.mark.parametrize(("msg_type", "content"), MINIMAL + FULLER, ids=ids(MINIMAL + FULLER))
def test_valid_messages_have_no_problems(msg_type: str, content: dict[str, Any]) -> None:
    msg = message(msg_type, content)
    assert msgspec.problems(msg) == []
    msgspec.assert_valid(msg)


@pytest.mark.parametrize(("msg_type", "content", "expected"), INVALID, ids=ids(INVALID))
def test_invalid_content_is_reported(msg_type: str, content: dict[str, Any], expected: str) -> None:
    found = msgspec.problems(message(msg_type, content))
    assert any(p.startswith(expected) for p in found), found


def test_every_msg_type_has_valid_and_invalid_samples() -> None:
    assert {t for t, _ in MINIMAL} == set(msgspec.CONTENT)
    assert {t for t, _, _ in INVALID} == set(msgspec.CONTENT)


def test_assert_valid_lists_every_problem() -> None:
    msg = message("stream", {"name": "stdin"})
    with pytest.raises(AssertionError) as raised:
        msgspec.assert_valid(msg)
    assert "'stream' message breaks the spec" in str(raised.value)
    assert "content.name: expected one of" in str(raised.value)
    assert "content.text: missing" in str(raised.value)


def test_not_a_dict() -> None:
    assert msgspec.problems([]) == ["message: expected dict, got list"]


def test_missing_parts() -> None:
    assert msgspec.problems({}) == [
        "header: missing",
        "parent_header: missing",
        "metadata: missing",
        "content: missing",
    ]


def with_header(**changes: Any) -> Message:
    msg = message("status", {"execution_state": "idle"})
    msg["header"].update(changes)
    return msg


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (with_header(date="yesterday"), "header.date: expected an ISO 8601 timestamp"),
        (with_header(date=0), "header.date: expected datetime or ISO 8601 str"),
        (with_header(version="4.1"), "header.version: expected a 5.x version"),
        (with_header(msg_id=""), "header.msg_id: expected a non-empty str"),
        (with_header(session=None), "header.session: expected a non-empty str"),
        (with_header(subshell_id=5), "header.subshell_id: expected str or NoneType"),
        (with_header(msg_type="execute_request"), "header.msg_type: unknown message type"),
        (with_header(msg_type="shiny_new_thing"), "header.msg_type: unknown message type"),
        (with_header(msg_type="idle"), "msg_type: 'status' differs from header.msg_type"),
        ({**message("status", {"execution_state": "idle"}), "msg_id": "x"}, "msg_id: 'x' differs"),
        ({**message("status", {"execution_state": "idle"}), "buffers": b""}, "buffers: expected"),
        ({**message("status", {"execution_state": "idle"}), "metadata": []}, "metadata: expected"),
        ({**message("status", {"execution_state": "idle"}), "header": []}, "header: expected"),
        (message("status", "idle"), "content: expected dict"),
    ],
)
def test_invalid_envelope_is_reported(msg: Message, expected: str) -> None:
    found = msgspec.problems(msg)
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "msg",
    [
        with_header(date="2025-01-02T03:04:05.678901Z"),
        with_header(date="2025-01-02T03:04:05+01:00"),
        with_header(subshell_id=None),
        with_header(subshell_id="abc"),
        with_header(version="5.3"),
        {key: value for key, value in with_header().items() if key != "buffers"},
    ],
)
def test_valid_envelope_variants(msg: Message) -> None:
    assert msgspec.problems(msg) == []


def test_reply_needs_its_request_as_parent() -> None:
    orphan = message("interrupt_reply", {"status": "ok"})
    orphan["parent_header"] = {}
    assert msgspec.problems(orphan) == ["parent_header: empty, yet interrupt_reply answers a request"]
    misplaced = message("interrupt_reply", {"status": "ok"})
    misplaced["parent_header"] = header("execute_request")
    assert msgspec.problems(misplaced) == [
        "parent_header.msg_type: expected 'interrupt_request', got 'execute_request'"
    ]
    unnamed = message("interrupt_reply", {"status": "ok"})
    del unnamed["parent_header"]["msg_id"]
    assert msgspec.problems(unnamed) == ["parent_header.msg_id: missing"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    msg = message("execute_input", {"code": 1})
    msg["header"]["version"] = "6"
    assert msgspec.problems(msg) == [
        "header.version: expected a 5.x version string, got '6'",
        "content.execution_count: missing",
        "content.code: expected str, got int",
    ]


def sample_and_path(data: st.DataObject, *, removable: bool) -> tuple[Message, Path]:
    msg_type, content = data.draw(st.sampled_from(MINIMAL), label="sample")
    msg = message(msg_type, copy.deepcopy(content))
    candidates = [p for p in field_paths(msg) if not removable or isinstance(p[-1], str)]
    return msg, data.draw(st.sampled_from(candidates), label="path")


@given(st.data())
def test_removing_any_field_is_reported(data: st.DataObject) -> None:
    msg, path = sample_and_path(data, removable=True)
    del parent_of(msg, path)[path[-1]]
    found = msgspec.problems(msg)
    assert any(p.startswith(dotted(path)) for p in found), found


@given(st.data())
def test_retyping_any_field_is_reported(data: st.DataObject) -> None:
    msg, path = sample_and_path(data, removable=False)
    old = parent_of(msg, path)[path[-1]]
    kinds = set(KINDS) - {type(old).__name__} - ALSO_VALID.get(dotted(path), set())
    kind = data.draw(st.sampled_from(sorted(kinds)), label="kind")
    parent_of(msg, path)[path[-1]] = data.draw(KINDS[kind], label="new value")
    found = msgspec.problems(msg)
    assert any(p.startswith(dotted(path)) for p in found), found


@given(st.data(), st.dictionaries(TEXT.map("x-".__add__), JSON, min_size=1, max_size=3))
def test_extra_fields_are_allowed(data: st.DataObject, extra: dict[str, Any]) -> None:
    msg_type, content = data.draw(st.sampled_from(MINIMAL + FULLER), label="sample")
    msg = message(msg_type, {**content, **extra})
    msg["header"].update(extra)
    msg["metadata"].update(extra)
    assert msgspec.problems(msg) == []


@given(TEXT.filter(lambda s: s not in {"stdout", "stderr"}))
def test_stream_names_outside_the_spec_are_reported(name: str) -> None:
    found = msgspec.problems(message("stream", {"name": name, "text": ""}))
    assert [p.split(":")[0] for p in found] == ["content.name"]


@given(st.sampled_from(sorted(msgspec.CONTENT)), JSON)
def test_any_content_is_checked_without_raising(msg_type: str, content: Any) -> None:
    found = msgspec.problems(message(msg_type, content))
    assert all(isinstance(p, str) for p in found)


@given(JSON)
def test_any_message_is_checked_without_raising(msg: Any) -> None:
    found = msgspec.problems(msg)
    assert found
    assert all(isinstance(p, str) for p in found)
