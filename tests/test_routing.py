"""The dispatch table is pure: check every rule, and totality with hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel import Channel, Route, RunMode, route
from kernel._core.enums import Where
from kernel._core.routing import ROWS, Handler, lookup, table

SHARED = {"execute_request", "kernel_info_request", "comm_info_request", "complete_request", "inspect_request",
          "is_complete_request", "history_request", "interrupt_request", "shutdown_request"}


def test_control_requests_never_wait_for_user_code() -> None:
    for msg_type in ("interrupt_request", "shutdown_request", "debug_request", "kernel_info_request",
                     "create_subshell_request", "anything"):
        assert route(msg_type, Channel.CONTROL, RunMode.QUEUE) == Route(Where.IO, RunMode.TASK)


def test_execute_follows_the_cell_mode_on_shell_and_control() -> None:
    for channel in (Channel.SHELL, Channel.CONTROL):
        for mode in RunMode:
            assert route("execute_request", channel, mode) == Route(Where.SHELL, mode)


def test_readers_run_in_an_io_worker_thread() -> None:
    for channel in (Channel.SHELL, Channel.CONTROL):
        for msg_type in ("complete_request", "inspect_request", "is_complete_request", "history_request"):
            assert route(msg_type, channel, RunMode.QUEUE) == Route(Where.IO, RunMode.THREAD)


def test_kernel_info_and_comm_info_are_answered_by_the_io_loop() -> None:
    for msg_type in ("kernel_info_request", "comm_info_request"):
        assert route(msg_type, Channel.SHELL, RunMode.BLOCKING) == Route(Where.IO, RunMode.TASK)


def test_comm_messages_run_as_tasks_on_the_shell() -> None:
    for msg_type in ("comm_open", "comm_msg", "comm_close"):
        assert route(msg_type, Channel.SHELL, RunMode.QUEUE) == Route(Where.SHELL, RunMode.TASK)
        assert lookup(msg_type, Channel.SHELL).reply is None


def test_unknown_shell_messages_queue_on_the_shell_without_reply() -> None:
    assert route("frobnicate_request", Channel.SHELL, RunMode.TASK) == Route(Where.SHELL, RunMode.QUEUE)
    assert lookup("frobnicate_request", Channel.SHELL).handler is Handler.UNKNOWN
    assert lookup("frobnicate_request", Channel.SHELL).reply is None


def test_control_serves_the_shell_requests_too() -> None:
    """The spec: control is "identical to Shell" (ipykernel's control_msg_types likewise)."""
    control = {r.msg_type for r in ROWS if r.channel is Channel.CONTROL}
    assert control >= SHARED
    for msg_type in SHARED:
        assert lookup(msg_type, Channel.CONTROL).handler is lookup(msg_type, Channel.SHELL).handler


def test_every_request_row_names_its_reply() -> None:
    for row in ROWS:
        if row.msg_type.endswith("_request"):
            assert row.reply == row.msg_type.removesuffix("_request") + "_reply"
        else:
            assert row.reply is None


@given(st.text(max_size=40), st.sampled_from(list(Channel)), st.sampled_from(list(RunMode)))
def test_table_is_total_and_consistent(msg_type: str, channel: Channel, mode: RunMode) -> None:
    row = lookup(msg_type, channel)
    result = route(msg_type, channel, mode)
    assert isinstance(result.where, Where) and isinstance(result.how, RunMode)
    if row.handler is Handler.UNKNOWN:
        assert row.reply is None
        assert result == (Route(Where.SHELL, RunMode.QUEUE) if channel is Channel.SHELL
                          else Route(Where.IO, RunMode.TASK))
    if row.handler is not Handler.EXECUTE:
        assert result.how is row.how


def test_published_table_lists_every_execute_mode() -> None:
    import kernel

    assert kernel.run_mode_table is table
    rows = [(m, c, mode) for m, c, mode, _ in table() if m == "execute_request" and c is Channel.SHELL]
    assert {mode for _, _, mode in rows} == set(RunMode)
