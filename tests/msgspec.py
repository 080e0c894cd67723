"""Schema check of the Jupyter messages a kernel sends, protocol version 5.5.

Pure and table-driven, like h11's state table: `CONTENT` maps each msg_type to a check of
its content, and `problems` walks a whole message and returns every way it breaks the spec
rather than stopping at the first, so one failing test shows the full picture. Extra fields
are always allowed, because the spec asks both sides to tolerate them.

Messages are checked in the shape jupyter_client's ``Session.deserialize`` returns them,
where ``header.date`` has already been parsed into a ``datetime``.

Where this check is stricter than the spec's wording, it says so in a comment: those are
fields frontends rely on in practice and our kernel always sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Any, str], list[str]]
"""Takes a value and its dotted path; returns the problems found, empty when valid."""

NoneType = type(None)


def _kind(value: object) -> str:
    return type(value).__name__


def typed(*types: type) -> Check:
    """Accept instances of `types`; a bool never passes as an int, as in JSON."""
    names = " or ".join(t.__name__ for t in types)

    def check(value: Any, path: str) -> list[str]:
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        return [] if ok else [f"{path}: expected {names}, got {_kind(value)}"]

    return check


def one_of(*allowed: str) -> Check:
    """Accept one of a fixed set of strings, such as a reply status."""

    def check(value: Any, path: str) -> list[str]:
        if isinstance(value, str) and value in allowed:
            return []
        return [f"{path}: expected one of {list(allowed)}, got {value!r}"]

    return check


def matching(pattern: str, what: str) -> Check:
    """Accept strings that fully match `pattern`, described as `what` in problems."""
    regex = re.compile(pattern)

    def check(value: Any, path: str) -> list[str]:
        if isinstance(value, str) and regex.fullmatch(value):
            return []
        return [f"{path}: expected {what}, got {value!r}"]

    return check


def list_of(item: Check) -> Check:
    """Accept a list (a tuple before serialization) whose every item passes `item`."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, list | tuple):
            return [f"{path}: expected list, got {_kind(value)}"]
        return [p for i, v in enumerate(value) for p in item(v, f"{path}[{i}]")]

    return check


def dict_of(item: Check) -> Check:
    """Accept a dict with str keys whose every value passes `item`."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected dict, got {_kind(value)}"]
        found = [f"{path}: key {k!r} is not a str" for k in value if not isinstance(k, str)]
        return found + [p for k, v in value.items() for p in item(v, f"{path}.{k}")]

    return check


def fields(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """Accept a dict holding every `required` field; check `optional` ones only if present."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected dict, got {_kind(value)}"]
        found = [f"{path}.{name}: missing" for name in required if name not in value]
        for name, sub in {**(optional or {}), **required}.items():
            if name in value:
                found += sub(value[name], f"{path}.{name}")
        return found

    return check


def switch(key: str, variants: Mapping[str, Check], other: Check | None = None) -> Check:
    """Pick the check for a dict by the value of `key` (``status``, ``source``).

    Without `other`, a value not in `variants` is a problem; with it, `other` applies.
    """

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected dict, got {_kind(value)}"]
        if key not in value:
            return [f"{path}.{key}: missing"]
        tag = value[key]
        variant = variants.get(tag) if isinstance(tag, str) else None
        if variant is not None:
            return variant(value, path)
        if other is not None:
            return other(value, path)
        return [f"{path}.{key}: expected one of {list(variants)}, got {tag!r}"]

    return check


def anything(value: Any, path: str) -> list[str]:
    """Accept any value: for fields the spec leaves free, such as a DAP body."""
    return []


def _date(value: Any, path: str) -> list[str]:
    """Accept a datetime, or an ISO 8601 string that jupyter_client left unparsed."""
    if isinstance(value, datetime):
        return []
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return [f"{path}: expected an ISO 8601 timestamp, got {value!r}"]
        return []
    return [f"{path}: expected datetime or ISO 8601 str, got {_kind(value)}"]


def _history_entry(value: Any, path: str) -> list[str]:
    """Accept ``(session, line, input)`` or ``(session, line, (input, output))``."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        return [f"{path}: expected a 3-item list, got {value!r}"]
    found = INT(value[0], f"{path}[0]") + INT(value[1], f"{path}[1]")
    source = value[2]
    if isinstance(source, list | tuple) and len(source) == 2:
        return found + STR(source[0], f"{path}[2][0]") + OPT_STR(source[1], f"{path}[2][1]")
    return found + STR(source, f"{path}[2]")


STR = typed(str)
OPT_STR = typed(str, NoneType)
INT = typed(int)
BOOL = typed(bool)
DICT = typed(dict)
NUMBER = typed(int, float)
NONEMPTY_STR = matching(r"(?s).+", "a non-empty str")
VERSION = matching(r"5\.\d+(\.\d+)?", "a 5.x version string")
MIME_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")


def mimebundle(*required: str) -> Check:
    """A MIME bundle: MIME-type keys, any JSON values, and ``text/plain`` always a str."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected dict, got {_kind(value)}"]
        found = [f"{path}.{mime}: missing" for mime in required if mime not in value]
        found += [
            f"{path}: key {k!r} is not a MIME type"
            for k in value
            if not (isinstance(k, str) and MIME_TYPE.fullmatch(k))
        ]
        return found + (STR(value["text/plain"], f"{path}.text/plain") if "text/plain" in value else [])

    return check


ERROR_FIELDS: dict[str, Check] = {"ename": STR, "evalue": STR, "traceback": list_of(STR)}
EMPTY = fields({})


def reply(ok: Mapping[str, Check], **optional: Check) -> Check:
    """A reply's content: `ok` fields on success, the standard error fields on error.

    ``aborted`` is deprecated since 5.1 but still sent for requests dropped after an error.
    """
    return switch(
        "status",
        {"ok": fields(ok, optional), "error": fields(ERROR_FIELDS), "aborted": EMPTY},
    )


PAYLOAD = switch(
    "source",
    {
        "page": fields({"data": mimebundle("text/plain"), "start": INT}),
        "set_next_input": fields({"text": STR}, {"replace": BOOL}),
        "edit_magic": fields({"filename": STR, "line_number": INT}),
        "ask_exit": fields({"keepkernel": BOOL}),
    },
    other=fields({"source": STR}),
)

LANGUAGE_INFO = fields(
    {"name": STR, "version": STR, "mimetype": STR, "file_extension": matching(r"\..*", "'.ext'")},
    {"pygments_lexer": STR, "codemirror_mode": typed(str, dict), "nbconvert_exporter": STR},
)

TRANSIENT = fields({}, {"display_id": STR})
DAP_RESPONSE = fields(
    {
        "seq": INT,
        "type": one_of("response"),
        "request_seq": INT,
        "success": BOOL,
        "command": STR,
    },
    {"message": STR, "body": anything},
)

CONTENT: dict[str, Check] = {
    # Shell and control replies.
    "execute_reply": switch(
        "status",
        {
            # The spec calls `payload` optional; frontends index it, so we require it.
            "ok": fields({"execution_count": INT, "user_expressions": DICT, "payload": list_of(PAYLOAD)}),
            "error": fields({**ERROR_FIELDS, "execution_count": INT}),
            "aborted": fields({}, {"execution_count": INT}),
        },
    ),
    "inspect_reply": reply({"found": BOOL, "data": mimebundle(), "metadata": DICT}),
    "complete_reply": reply(
        {"matches": list_of(STR), "cursor_start": INT, "cursor_end": INT, "metadata": DICT}
    ),
    "history_reply": reply({"history": list_of(_history_entry)}),
    "is_complete_reply": switch(
        "status",
        {
            "complete": EMPTY,
            "incomplete": fields({"indent": STR}),
            "invalid": EMPTY,
            "unknown": EMPTY,
        },
    ),
    "comm_info_reply": reply({"comms": dict_of(fields({"target_name": STR}))}),
    # The spec calls `help_links` optional; we require it. `debugger` defaults to false, and
    # since JEP 92 kernels may say "debugger" in `supported_features` instead (ipykernel 7).
    "kernel_info_reply": reply(
        {
            "protocol_version": VERSION,
            "implementation": STR,
            "implementation_version": STR,
            "language_info": LANGUAGE_INFO,
            "banner": STR,
            "help_links": list_of(fields({"text": STR, "url": STR})),
        },
        debugger=BOOL,
        supported_features=list_of(STR),
    ),
    "shutdown_reply": reply({"restart": BOOL}),
    "interrupt_reply": reply({}),
    "debug_reply": DAP_RESPONSE,
    "create_subshell_reply": reply({"subshell_id": STR}),
    "delete_subshell_reply": reply({}),
    "list_subshell_reply": reply({"subshell_id": list_of(STR)}),
    "connect_reply": reply(
        {"shell_port": INT, "iopub_port": INT, "stdin_port": INT, "hb_port": INT, "control_port": INT}
    ),
    # Not in the spec: ipykernel's answer to jupyter-resource-usage, which has no `status`.
    "usage_reply": fields(
        {"hostname": STR, "pid": INT, "cpu_count": typed(int, NoneType)},
        {"kernel_cpu": NUMBER, "kernel_memory": INT, "host_cpu_percent": NUMBER,
         "host_virtual_memory": dict_of(NUMBER)},
    ),
    # Stdin.
    "input_request": fields({"prompt": STR, "password": BOOL}),
    # IOPub.
    "status": fields({"execution_state": one_of("busy", "idle", "starting")}),
    "stream": fields({"name": one_of("stdout", "stderr"), "text": STR}),
    "display_data": fields({"data": mimebundle(), "metadata": DICT}, {"transient": TRANSIENT}),
    "update_display_data": fields(
        {"data": mimebundle(), "metadata": DICT, "transient": fields({"display_id": STR})}
    ),
    "execute_input": fields({"code": STR, "execution_count": INT}),
    "execute_result": fields(
        {"execution_count": INT, "data": mimebundle(), "metadata": DICT}, {"transient": TRANSIENT}
    ),
    "error": fields(ERROR_FIELDS),
    "clear_output": fields({"wait": BOOL}),
    "debug_event": fields({"seq": INT, "type": one_of("event"), "event": STR}, {"body": anything}),
    "comm_open": fields(
        {"comm_id": STR, "target_name": STR, "data": DICT},
        {"target_module": OPT_STR, "metadata": DICT},
    ),
    "comm_msg": fields({"comm_id": STR, "data": DICT}),
    "comm_close": fields({"comm_id": STR, "data": DICT}),
    "iopub_welcome": fields({"subscription": STR}),
}

HEADER = fields(
    {
        "msg_id": NONEMPTY_STR,
        "session": NONEMPTY_STR,
        "username": STR,
        "date": _date,
        "msg_type": STR,
        "version": VERSION,
    },
    {"subshell_id": OPT_STR},
)
PARENT_HEADER = fields({"msg_id": STR, "msg_type": STR})
PARTS = ("header", "parent_header", "metadata", "content")


def _parts(msg: dict[str, Any]) -> list[str]:
    """The four dicts every message has, plus the optional `buffers` list."""
    found = [f"{part}: missing" for part in PARTS if part not in msg]
    found += [p for part in PARTS[1:] if part in msg for p in DICT(msg[part], part)]
    if "buffers" in msg:
        found += list_of(anything)(msg["buffers"], "buffers")
    return found


def _copies(msg: dict[str, Any], header: dict[str, Any]) -> list[str]:
    """jupyter_client copies msg_id and msg_type to the top level; they must agree."""
    return [
        f"{key}: {msg[key]!r} differs from header.{key} {header.get(key)!r}"
        for key in ("msg_id", "msg_type")
        if key in msg and msg[key] != header.get(key)
    ]


def _parent(msg_type: str, parent: Any) -> list[str]:
    """A reply answers one request, so its parent_header is that request's header."""
    is_reply = msg_type.endswith("_reply")
    if not isinstance(parent, dict):
        return []
    if not parent:
        return [f"parent_header: empty, yet {msg_type} answers a request"] if is_reply else []
    found = PARENT_HEADER(parent, "parent_header")
    request = msg_type.removesuffix("_reply") + "_request"
    if is_reply and not found and parent["msg_type"] != request:
        found.append(f"parent_header.msg_type: expected {request!r}, got {parent['msg_type']!r}")
    return found


def _content(msg_type: str, content: Any) -> list[str]:
    """Look the msg_type up in `CONTENT`: one we do not know is itself a problem."""
    check = CONTENT.get(msg_type)
    if check is None:
        return [f"header.msg_type: unknown message type {msg_type!r}"]
    return check(content, "content") if isinstance(content, dict) else []


def problems(msg: Any) -> list[str]:
    """Every way `msg` breaks the messaging spec; an empty list means it is valid."""
    if not isinstance(msg, dict):
        return [f"message: expected dict, got {_kind(msg)}"]
    found = _parts(msg)
    header = msg.get("header")
    found += HEADER(header, "header") if "header" in msg else []
    if not isinstance(header, dict):
        return found
    found += _copies(msg, header)
    msg_type = header.get("msg_type")
    if isinstance(msg_type, str):
        found += _parent(msg_type, msg.get("parent_header"))
        found += _content(msg_type, msg.get("content")) if "content" in msg else []
    return found


def assert_valid(msg: Any) -> None:
    """Raise AssertionError naming the message and listing all its problems."""
    found = problems(msg)
    if found:
        header = msg.get("header") if isinstance(msg, dict) else None
        name = header.get("msg_type") if isinstance(header, dict) else None
        listing = "\n  ".join(found)
        raise AssertionError(f"{name!r} message breaks the spec:\n  {listing}")
