"""Per-cell options: run mode, timeout and error tags, from tags or a header comment.

Pure functions, no ``eval``. Precedence: a notebook cell tag (``metadata.tags`` of the
execute_request, sent by frontends that forward cell metadata), then the cell's first line
when it is a header comment, then the kernel default.

Header syntax: the first line is ``#`` followed by one or more words, *every* one of which
is an option: a mode (``queue``, ``task``, ``thread``, ``blocking``), ``timeout=SECONDS``,
``raises-exception`` or ``suppress-error``. ``# task`` and ``# thread timeout=5`` are
headers; ``# task list for today`` is an ordinary comment because ``list`` is not an option.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

from .._core.enums import RunMode

FLAG_TAGS = frozenset({"raises-exception", "suppress-error"})


@attrs.frozen
class CellOptions:
    """What the tags and header of one cell ask for."""

    mode: RunMode
    timeout: float | None = None
    raises_exception: bool = False
    suppress_error: bool = False


@attrs.frozen
class _Parsed:
    mode: RunMode | None = None
    timeout: float | None = None
    flags: frozenset[str] = frozenset()


def _parse_word(word: str) -> _Parsed | None:
    """One option word, or None when the word is not an option."""
    lowered = word.strip().lower()
    if lowered in RunMode._value2member_map_:
        return _Parsed(mode=RunMode(lowered))
    if lowered in FLAG_TAGS:
        return _Parsed(flags=frozenset({lowered}))
    if lowered.startswith("timeout="):
        try:
            seconds = float(lowered.removeprefix("timeout="))
        except ValueError:
            return None
        if math.isfinite(seconds) and seconds > 0:
            return _Parsed(timeout=seconds)
    return None


def _merge(words: Iterable[str], strict: bool) -> _Parsed | None:
    """Combine option words; with ``strict`` any non-option word voids the whole list."""
    mode: RunMode | None = None
    timeout: float | None = None
    flags: set[str] = set()
    for word in words:
        parsed = _parse_word(word)
        if parsed is None:
            if strict:
                return None
            continue
        mode = parsed.mode or mode
        timeout = parsed.timeout if parsed.timeout is not None else timeout
        flags |= parsed.flags
    return _Parsed(mode, timeout, frozenset(flags))


def parse_header(code: str) -> _Parsed | None:
    """The options of the cell's header comment, or None when line one is not a header."""
    first = code.lstrip("\n").split("\n", 1)[0].strip()
    if not first.startswith("#") or first.startswith("#!"):
        return None
    words = first[1:].split()
    if not words:
        return None
    return _merge(words, strict=True)


def tags_of(metadata: Any) -> list[str]:
    """The string tags of an execute_request's metadata; anything malformed counts as none."""
    if not isinstance(metadata, dict):
        return []
    tags = metadata.get("tags")
    if not isinstance(tags, list):
        return []
    return [t for t in tags if isinstance(t, str)]


def cell_options(code: str, metadata: Any, default: RunMode, silent: bool = False,
                 default_timeout: float | None = None) -> CellOptions:
    """Resolve the options of one execute request (tags win over the header).

    Silent requests (frontends' housekeeping) run as tasks unless told otherwise, so they
    never wait behind a long queued cell.
    """
    from_tags = _merge(tags_of(metadata), strict=False) or _Parsed()
    from_header = parse_header(code) or _Parsed()
    mode = from_tags.mode or from_header.mode or (RunMode.TASK if silent else default)
    timeout = from_tags.timeout if from_tags.timeout is not None else from_header.timeout
    flags = from_tags.flags | from_header.flags
    return CellOptions(
        mode=mode,
        timeout=timeout if timeout is not None else default_timeout,
        raises_exception="raises-exception" in flags,
        suppress_error="suppress-error" in flags,
    )
