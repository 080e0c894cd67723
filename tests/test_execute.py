"""Execution over real sockets: results, errors, counts, history flags, stop_on_error."""

from __future__ import annotations

import re

from tests.harness import Frontend, stdout_of


def test_top_level_await_and_persistent_variables(kernel: Frontend) -> None:
    reply, _ = kernel.execute("import trio\nawait trio.sleep(0.01)\nvalue = 41")
    assert reply["content"]["status"] == "ok"
    reply, outputs = kernel.execute("value + 1")
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"] == "42"
    assert results[0]["content"]["execution_count"] == reply["content"]["execution_count"]


def test_nursery_in_a_cell(kernel: Frontend) -> None:
    code = (
        "import trio\ndone = []\nasync def job(n):\n    await trio.sleep(0.01 * n)\n    done.append(n)\n"
        "async with trio.open_nursery() as n:\n    for i in (3, 1, 2):\n        n.start_soon(job, i)\nprint(done)"
    )
    reply, outputs = kernel.execute(code)
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == "[1, 2, 3]\n"


def test_execute_input_precedes_output_and_counts_increase(kernel: Frontend) -> None:
    first, outputs = kernel.execute("print('a')")
    assert [m["msg_type"] for m in outputs] == ["execute_input", "stream"]
    assert outputs[0]["content"]["execution_count"] == first["content"]["execution_count"]
    second, _ = kernel.execute("print('b')")
    assert second["content"]["execution_count"] == first["content"]["execution_count"] + 1


def test_error_reply_and_message_agree(kernel: Frontend) -> None:
    reply, outputs = kernel.execute("def f():\n    raise ValueError('boom')\nf()")
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "error"
    assert (reply["content"]["ename"], reply["content"]["evalue"]) == ("ValueError", "boom")
    assert errors and errors[0]["content"]["traceback"] == reply["content"]["traceback"]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(reply["content"]["traceback"]))
    assert "----> 3 f()" in plain


def test_exception_group_is_an_error_message(kernel: Frontend) -> None:
    code = ("import trio\nasync def bad():\n    raise KeyError('k')\n"
            "async with trio.open_nursery() as n:\n    n.start_soon(bad)")
    reply, outputs = kernel.execute(code)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ExceptionGroup"
    assert any("KeyError" in line for line in reply["content"]["traceback"])
    assert [m for m in outputs if m["msg_type"] == "error"]


def test_syntax_error(kernel: Frontend) -> None:
    reply, _ = kernel.execute("x = )")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "SyntaxError"


def test_silent_publishes_nothing_and_keeps_the_count(kernel: Frontend) -> None:
    before, _ = kernel.execute("1")
    reply, outputs = kernel.execute("2 + 2", silent=True)
    assert outputs == []
    assert reply["content"]["execution_count"] == before["content"]["execution_count"] + 1
    after, _ = kernel.execute("3")
    assert after["content"]["execution_count"] == before["content"]["execution_count"] + 1


def test_store_history_false_keeps_the_count(kernel: Frontend) -> None:
    before, _ = kernel.execute("1")
    reply, _ = kernel.execute("2", store_history=False)
    after, _ = kernel.execute("3")
    assert after["content"]["execution_count"] == before["content"]["execution_count"] + 1
    assert reply["content"]["status"] == "ok"


def test_user_expressions(kernel: Frontend) -> None:
    reply, _ = kernel.execute("a = 6", user_expressions={"double": "a * 2", "bad": "1/0"})
    expressions = reply["content"]["user_expressions"]
    assert expressions["double"]["status"] == "ok"
    assert expressions["double"]["data"]["text/plain"] == "12"
    assert expressions["bad"]["status"] == "error"
    assert expressions["bad"]["ename"] == "ZeroDivisionError"


def test_magics_work(kernel: Frontend) -> None:
    reply, outputs = kernel.execute("%time x = sum(range(10))\nx")
    assert reply["content"]["status"] == "ok"
    assert any(m["msg_type"] == "execute_result" for m in outputs)


def test_execute_without_code_gets_an_error_reply(kernel: Frontend) -> None:
    msg_id = kernel.send_shell("execute_request", {"silent": False})
    reply = kernel.shell_reply(msg_id)
    assert reply["content"]["status"] == "error"
    assert "code" in reply["content"]["evalue"]


def test_exit_asks_the_frontend_through_a_payload(kernel: Frontend) -> None:
    reply, _ = kernel.execute("exit")
    assert reply["content"]["payload"] == [{"source": "ask_exit", "keepkernel": False}]
