"""The jupyter_kernel_test conformance suite, with every message schema-checked.

``KernelTests`` is a synchronous ``unittest.TestCase``: pytest collects it as such and
pytest-trio's ``trio_mode`` leaves it alone, since it only claims ``async def`` tests. The
base classes are reached through the module, never imported by name, so that pytest does
not also collect them against the default ``python3`` kernel.

Each class wraps its client's channels in ``setUpClass`` so that every message the suite
receives passes `msgspec.assert_valid`, and so that no read blocks forever: the suite calls
``get_msg()`` without a timeout in places, which would hang on a silent kernel.

Set ``TRIO_KERNEL_NAME`` to run the suite against another kernelspec (``python3`` checks
the suite itself against ipykernel). The samples use IPython's display API, ``?`` help and
history, which a Python kernel for Jupyter frontends is expected to offer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from unittest import SkipTest

import jupyter_kernel_test as jkt
from jupyter_client.blocking.client import BlockingKernelClient

from tests import msgspec

KERNEL_NAME = os.environ.get("TRIO_KERNEL_NAME", "trio")
READ_TIMEOUT = 30.0
"""Upper bound on any single read, in seconds, for reads the suite leaves unbounded."""

Message = dict[str, Any]


def _checked(get_msg: Callable[..., Message]) -> Callable[..., Message]:
    """Wrap a channel's ``get_msg`` to bound its wait and schema-check what it returns."""

    def get_checked(timeout: float | None = None) -> Message:
        msg = get_msg(timeout=READ_TIMEOUT if timeout is None else timeout)
        msgspec.assert_valid(msg)
        return msg

    return get_checked


def check_every_message(kc: BlockingKernelClient) -> None:
    """Route every read on `kc`'s channels through `_checked`.

    The client's ``get_*_msg`` methods and the suite's direct ``channel.get_msg`` calls
    all end in the channel's ``get_msg``, so wrapping it there catches every message.
    Touching a channel property creates the channel, which ``start_channels`` then reuses.
    """
    for channel in (kc.shell_channel, kc.iopub_channel, kc.stdin_channel, kc.control_channel):
        channel.get_msg = _checked(channel.get_msg)  # type: ignore[method-assign]


class TestKernelConformance(jkt.KernelTests):
    """The full jupyter_kernel_test suite, every sample filled in."""

    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('to stderr', file=sys.stderr)"

    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import collec", "matches": {"collections"}},
        {"text": "hello_wor"},
    ]
    complete_code_samples = [
        "1",
        "print('hello, world')",
        "def f(x):\n    return x\n\n",
        "import sys",
    ]
    incomplete_code_samples = [
        "print('''hello",
        "def f(x):",
        "for i in range(3):",
        "x = [1,",
    ]
    invalid_code_samples = [
        "x = = 1",
        "1 +* 2",
        "x = )",
    ]

    code_page_something = "print?"
    code_generate_error = "raise ValueError('boom')"

    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'abc'", "result": "'abc'"},
        {"code": "[1, 2]", "result": "[1, 2]"},
        {
            "code": "from IPython.display import HTML; HTML('<b>x</b>')",
            "mime": "text/html",
            "result": "<b>x</b>",
        },
    ]
    code_display_data = [
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>hi</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Markdown, display; display(Markdown('*hi*'))",
            "mime": "text/markdown",
        },
        {
            "code": "from IPython.display import Math, display; display(Math(r'\\frac{1}{2}'))",
            "mime": "text/latex",
        },
        {
            "code": "from IPython.display import JSON, display; display(JSON({'a': [1, 2]}))",
            "mime": "application/json",
        },
        {
            "code": (
                "from IPython.display import HTML, display\n"
                "h = display(HTML('<i>one</i>'), display_id=True)\n"
                "h.update(HTML('<i>two</i>'))"
            ),
            "mime": "text/html",
        },
    ]

    # Must match exactly one of code_execute_result's codes: `?` is one character.
    code_history_pattern = "6?7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "print"
    code_clear_output = "from IPython.display import clear_output; print('x'); clear_output()"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        check_every_message(cls.kc)

    # Beyond the suite: requests whose replies it never asks for, so msgspec sees them too.

    def control_request(self, msg_type: str, content: dict[str, Any]) -> Message:
        """Send a request on the control channel and return its (checked) reply."""
        request = self.kc.session.msg(msg_type, content)
        self.kc.control_channel.send(request)
        reply = self.kc.control_channel.get_msg(timeout=jkt.TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], request["header"]["msg_id"])
        return reply

    def test_comm_info(self) -> None:
        self.flush_channels()
        msg_id = self.kc.comm_info()
        reply = self.kc.get_shell_msg(timeout=jkt.TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "ok")

    def test_input_request(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("name = input('name? ')", allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=jkt.TIMEOUT)
        self.assertEqual(request["parent_header"]["msg_id"], msg_id)
        self.assertEqual(request["content"]["prompt"], "name? ")
        self.kc.input("trio")
        reply = self.kc.get_shell_msg(timeout=jkt.TIMEOUT)
        self.assertEqual(reply["content"]["status"], "ok")

    def test_subshells(self) -> None:
        info = self.control_request("kernel_info_request", {})
        if "kernel subshells" not in info["content"].get("supported_features", []):
            raise SkipTest("kernel subshells are not supported")
        created = self.control_request("create_subshell_request", {})
        subshell_id = created["content"]["subshell_id"]
        listed = self.control_request("list_subshell_request", {})
        self.assertIn(subshell_id, listed["content"]["subshell_id"])
        deleted = self.control_request("delete_subshell_request", {"subshell_id": subshell_id})
        self.assertEqual(deleted["content"]["status"], "ok")
        listed = self.control_request("list_subshell_request", {})
        self.assertNotIn(subshell_id, listed["content"]["subshell_id"])


class TestIopubWelcome(jkt.IopubWelcomeTests):
    """Protocol 5.5 (JEP 65): a new iopub subscriber is greeted with ``iopub_welcome``."""

    kernel_name = KERNEL_NAME
    support_iopub_welcome = True

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        check_every_message(cls.kc)
