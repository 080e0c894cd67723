"""Observable behaviour of a kernel, with what legitimately differs between kernels removed.

The differential tests and the notebook corpus compare ``trio`` with ``python3``
(ipykernel) through these functions: ids, memory addresses, timings, colour codes, file
paths and execution counts are replaced by placeholders, so that what is left is what a
user sees.
"""

from __future__ import annotations

import re
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
UUIDISH = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b|\b[0-9a-f]{32}\b")
TIMING = re.compile(r"\d+(\.\d+)?\s*(ns|µs|us|ms|s)\b")
PATH = re.compile(r"(/[\w.+-]+)+/([\w.+-]+\.py)")
CELL_FILE = re.compile(r"\(\d+\.py, line")
WARNING = re.compile(r"^\S+\.py:\d+: (\w*Warning): (.*)\n  .*\n", re.MULTILINE)
"""A warning as Python prints it: ``file:line: Category: message`` and the source line."""


def text(value: str) -> str:
    """Text as a user reads it: no colour codes, addresses, ids, timings, paths, cell file
    names (ipykernel hashes cells with murmur2, we with the debugger's hash) or the source
    location of a warning."""
    value = ANSI.sub("", value)
    value = WARNING.sub(r"<warning> \1: \2\n", value)
    value = CELL_FILE.sub("(<cell>.py, line", value)
    value = ADDRESS.sub("0x…", value)
    value = UUIDISH.sub("<id>", value)
    value = TIMING.sub("<time>", value)
    return PATH.sub(lambda m: f"…/{m.group(2)}", value)


IMAGES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")
"""Drawn by the same library in both kernels; compared by type (matplotlib's SVG ids are
random per process)."""


def data(bundle: dict[str, Any]) -> dict[str, Any]:
    return {mime: f"<{mime}>" if mime in IMAGES else comm_data(v) for mime, v in bundle.items()}


def merge_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent stream outputs of the same name as one (kernels split text differently)."""
    merged: list[dict[str, Any]] = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == out["name"]):
            merged[-1] = {**merged[-1], "text": merged[-1]["text"] + out["text"]}
        else:
            merged.append(dict(out))
    return merged


def nb_output(out: dict[str, Any]) -> dict[str, Any]:
    """An nbformat output, normalised."""
    kind = out["output_type"]
    if kind == "stream":
        return {"output_type": kind, "name": out["name"], "text": text(out["text"])}
    if kind == "error":
        return {"output_type": kind, "ename": out["ename"], "evalue": text(out["evalue"])}
    return {"output_type": kind, "data": data(dict(out.get("data", {})))}


def iopub(msg: dict[str, Any]) -> dict[str, Any]:
    """An iopub message (from ``Frontend.execute``) as an nbformat-like output."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": text(content["text"])}
    if kind == "error":
        return {"output_type": "error", "ename": content["ename"], "evalue": text(content["evalue"])}
    if kind in ("display_data", "execute_result", "update_display_data"):
        return {"output_type": kind, "data": data(content["data"])}
    if kind.startswith("comm_"):
        return {"output_type": kind, "data": comm_data(content.get("data", {}))}
    return {"output_type": kind}


def comm_data(value: Any) -> Any:
    """Comm payloads with ids (model ids, msg ids) replaced."""
    if isinstance(value, dict):
        return {k: comm_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comm_data(v) for v in value]
    if isinstance(value, str):
        return "IPY_MODEL_<id>" if value.startswith("IPY_MODEL_") else text(value)
    return value
