"""The run-mode table is pure: check every rule, and totality with hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel import Channel, Route, RunMode, route
from kernel._core.enums import Where
from kernel._core.routing import COMM_MESSAGES, IO_REQUESTS, READER_REQUESTS, table


def test_control_requests_never_wait_for_user_code() -> None:
    for msg_type in ("interrupt_request", "shutdown_request", "debug_request", "kernel_info_request",
                     "create_subshell_request", "anything"):
        assert route(msg_type, Channel.CONTROL, RunMode.QUEUE) == Route(Where.IO, RunMode.TASK)


def test_execute_follows_the_cell_mode() -> None:
    for mode in RunMode:
        assert route("execute_request", Channel.SHELL, mode) == Route(Where.SHELL, mode)


def test_readers_run_in_an_io_worker_thread() -> None:
    for msg_type in ("complete_request", "inspect_request", "is_complete_request", "history_request"):
        assert route(msg_type, Channel.SHELL, RunMode.QUEUE) == Route(Where.IO, RunMode.THREAD)


def test_kernel_info_and_comm_info_are_answered_by_the_io_loop() -> None:
    for msg_type in ("kernel_info_request", "comm_info_request"):
        assert route(msg_type, Channel.SHELL, RunMode.BLOCKING) == Route(Where.IO, RunMode.TASK)


def test_comm_messages_run_as_tasks_on_the_shell() -> None:
    for msg_type in ("comm_open", "comm_msg", "comm_close"):
        assert route(msg_type, Channel.SHELL, RunMode.QUEUE) == Route(Where.SHELL, RunMode.TASK)


def test_unknown_shell_messages_queue_on_the_shell() -> None:
    assert route("frobnicate_request", Channel.SHELL, RunMode.TASK) == Route(Where.SHELL, RunMode.QUEUE)


@given(st.text(max_size=40), st.sampled_from(list(Channel)), st.sampled_from(list(RunMode)))
def test_table_is_total_and_consistent(msg_type: str, channel: Channel, mode: RunMode) -> None:
    result = route(msg_type, channel, mode)
    assert isinstance(result.where, Where) and isinstance(result.how, RunMode)
    if result.where is Where.IO:
        assert channel is Channel.CONTROL or msg_type in IO_REQUESTS | READER_REQUESTS
    if msg_type != "execute_request" and result.where is Where.SHELL:
        assert result.how is (RunMode.TASK if msg_type in COMM_MESSAGES else RunMode.QUEUE)


def test_published_table_lists_every_execute_mode() -> None:
    import kernel

    assert kernel.run_mode_table is table
    rows = [(m, c, mode) for m, c, mode, _ in table() if m == "execute_request" and c is Channel.SHELL]
    assert {mode for _, _, mode in rows} == set(RunMode)
