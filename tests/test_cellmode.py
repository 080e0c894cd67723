"""Cell header and tag parsing: pure, never raises, and precedence holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel import RunMode
from kernel._core.cellmode import cell_options, parse_header, tags_of

modes = st.sampled_from(list(RunMode))


def test_header_selects_mode_and_options() -> None:
    opts = cell_options("# thread timeout=2.5 raises-exception\nx = 1", {}, RunMode.QUEUE)
    assert (opts.mode, opts.timeout, opts.raises_exception, opts.suppress_error) == (
        RunMode.THREAD, 2.5, True, False)


def test_ordinary_comment_is_not_a_header() -> None:
    assert parse_header("# task list for today\nx = 1") is None
    assert cell_options("# task list\n", {}, RunMode.QUEUE).mode is RunMode.QUEUE


def test_header_must_be_the_first_line() -> None:
    assert cell_options("x = 1\n# task\n", {}, RunMode.QUEUE).mode is RunMode.QUEUE
    assert cell_options("\n\n# task\nx = 1", {}, RunMode.QUEUE).mode is RunMode.TASK


def test_bad_timeouts_are_not_options() -> None:
    for text in ("timeout=abc", "timeout=-1", "timeout=0", "timeout=nan", "timeout=inf"):
        assert parse_header(f"# task {text}") is None


def test_silent_requests_run_as_tasks_by_default() -> None:
    assert cell_options("x", {}, RunMode.QUEUE, silent=True).mode is RunMode.TASK
    assert cell_options("# blocking\nx", {}, RunMode.QUEUE, silent=True).mode is RunMode.BLOCKING


def test_malformed_metadata_means_no_tags() -> None:
    for metadata in (None, [], {"tags": "task"}, {"tags": [1, None]}, "x"):
        assert tags_of(metadata) == []


@given(st.text(max_size=200), st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
       modes, st.booleans())
def test_arbitrary_text_never_raises(code: str, metadata: object, default: RunMode, silent: bool) -> None:
    opts = cell_options(code, metadata, default, silent=silent)
    assert isinstance(opts.mode, RunMode)
    assert opts.timeout is None or opts.timeout > 0


@given(modes, modes, modes)
def test_tags_win_over_header_which_wins_over_default(tag: RunMode, header: RunMode, default: RunMode) -> None:
    code = f"# {header.value}\nx = 1"
    assert cell_options(code, {"tags": [tag.value]}, default).mode is tag
    assert cell_options(code, {"tags": []}, default).mode is header
    assert cell_options("x = 1", {}, default).mode is default


@given(st.lists(st.sampled_from(["task", "thread", "timeout=3", "raises-exception", "suppress-error",
                                 "other", "QUEUE"]), max_size=6))
def test_tags_ignore_unknown_words(tags: list[str]) -> None:
    opts = cell_options("x", {"tags": tags}, RunMode.QUEUE)
    assert opts.raises_exception == ("raises-exception" in tags)
    assert opts.suppress_error == ("suppress-error" in tags)
    assert (opts.timeout == 3.0) == ("timeout=3" in tags)
