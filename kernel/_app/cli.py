"""The ``trio-kernel`` / ``python -m kernel`` command line.

``python -m kernel -f FILE`` runs a kernel (what a kernelspec starts); the subcommands
``install``, ``uninstall``, ``list`` and ``routes`` manage and describe it. Errors a user
can fix (a missing connection file) are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .. import __version__
from .._core.enums import RunMode

SUBCOMMANDS = ("install", "uninstall", "list", "routes", "run")
GATEWAY_COMMANDS = ("eg-launch", "eg-kernelspec")  # parsed in ``gateway``


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-kernel", description="A trio-first Jupyter kernel for Python."
    )
    parser.add_argument("--version", action="version", version=f"trio-kernel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a kernel (the default when no command is given)")
    _add_run_options(run)

    install = sub.add_parser("install", help="install the kernelspec")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="into the user's Jupyter data dir")
    where.add_argument("--sys-prefix", action="store_true", help="into sys.prefix (this venv)")
    where.add_argument("--prefix", help="into PREFIX/share/jupyter/kernels")
    install.add_argument("--name", default="trio")
    install.add_argument("--display-name", default="Python 3 (trio)")
    install.add_argument("--env", action="append", type=_env_pair, default=[], metavar="K=V")
    install.add_argument("--default-mode", choices=[m.value for m in RunMode])
    install.add_argument("--interrupt-mode", choices=["message", "signal"], default="message")

    uninstall = sub.add_parser("uninstall", help="remove the kernelspec")
    uninstall.add_argument("--name", default="trio")

    sub.add_parser("list", help="list the kernelspecs Jupyter can see")
    sub.add_parser("routes", help="print the run-mode table")
    sub.add_parser("eg-launch", help="launch a kernel for Jupyter Enterprise Gateway (see eg-launch -h)")
    sub.add_parser("eg-kernelspec", help="write a kernelspec for Enterprise Gateway (see eg-kernelspec -h)")
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--connection-file", help="connection file written by the frontend")
    parser.add_argument("--default-mode", choices=[m.value for m in RunMode], default="queue")
    parser.add_argument("--log-level", default=os.environ.get("TRIO_KERNEL_LOG_LEVEL", "WARNING"))
    parser.add_argument("--no-history", action="store_true",
                        help="keep history in memory only (also TRIO_KERNEL_NO_HISTORY=1)")


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in GATEWAY_COMMANDS:
        from .._app.gateway import main as gateway_main

        return gateway_main(args_list)
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "run")
    parser = build_parser()
    # IPython/traitlets options (``--HistoryManager.hist_file=...``, ``--profile``) are left
    # over here and handed to ``ipyconfig``: a kernel must not die on them.
    args, extra = parser.parse_known_args(args_list)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "install":
        return _install(args)
    if args.command == "uninstall":
        from .._app.kernelspec import uninstall

        print(f"removed {uninstall(args.name)}")
        return 0
    if args.command == "list":
        from .._app.kernelspec import listing

        for name, path in sorted(listing().items()):
            print(f"{name:20} {path}")
        return 0
    if args.command == "routes":
        from .._core.routing import table

        print(f"{'message type':24} {'channel':8} {'cell mode':9} -> where / how")
        for msg_type, channel, mode, route in table():
            print(f"{msg_type:24} {channel:8} {mode:9} -> {route.where} / {route.how}")
        return 0
    return _run(args, extra)


def _install(args: argparse.Namespace) -> int:
    from .._app.kernelspec import install

    path = install(
        user=args.user,
        prefix=sys.prefix if args.sys_prefix else args.prefix,
        name=args.name,
        display_name=args.display_name,
        env=dict(args.env),
        default_mode=RunMode(args.default_mode) if args.default_mode else None,
        interrupt_mode=args.interrupt_mode,
    )
    print(f"installed kernelspec {args.name!r} in {path}")
    return 0


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    from .._app import logs
    from .._transport.connection import ConnectionFileError, bind_kernel_sockets

    logs.configure(args.log_level)
    # Bind first, before trio and IPython are imported: a frontend that connected at once
    # is then accepted on its first retry rather than a reconnect interval later.
    try:
        bound = bind_kernel_sockets(args.connection_file)
    except ConnectionFileError as exc:
        print(f"trio-kernel: {exc}", file=sys.stderr)
        return 2
    history = ":memory:" if args.no_history or os.environ.get("TRIO_KERNEL_NO_HISTORY") == "1" else None
    return run_kernel(bound, RunMode(args.default_mode), history, extra)


def run_kernel(bound: Any, default_mode: RunMode, history: str | None, extra: list[str],
               beside: Callable[..., Awaitable[object]] | None = None) -> int:
    """Run the kernel on sockets already bound until it is shut down; the exit code.

    Shared by ``trio-kernel -f`` and the Enterprise Gateway launcher: IPython options from
    ``extra``, the exit watch (parent death, SIGTERM), our SIGINT handler. ``beside`` is
    started next to the kernel as ``beside(cancel_scope, task_status=...)`` and may end it by
    cancelling that scope; when the kernel ends, it is cancelled.
    """
    from .._app import ipyconfig  # after binding: it imports traitlets

    # Only parsed here: the profile's files are read once the I/O loop answers kernel_info
    # (``kernel._start_shell_side``), since finding the profile imports IPython.
    ipython = ipyconfig.parse(extra)
    ipyconfig.notebook_environment()
    # Draw figures inline by default, as notebook users expect; only the standalone kernel
    # does this, an embedding application keeps its own backend.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import trio

    from .._app.parent import ExitWatch
    from .._control import sigint as _sigint

    def remove_own_file() -> None:
        if bound.owns_file:
            bound.connection_file.unlink(missing_ok=True)

    watch = ExitWatch(remove_own_file)
    _sigint.install()
    watch.start()
    try:
        trio.run(_serve, bound, default_mode, history, watch, ipython, beside)
    except KeyboardInterrupt:
        return 130
    finally:
        watch.close()
    return 0


async def _serve(bound: Any, default_mode: RunMode, history: str | None, watch: Any, ipython: Any,
                 beside: Callable[..., Awaitable[object]] | None) -> None:
    import trio

    from .._app.heap import release_free_memory
    from .._app.kernel import kernel_on
    from .._app.logs import to_process_stderr

    async with trio.open_nursery() as nursery:
        if beside is not None:
            await nursery.start(beside, nursery.cancel_scope)
        async with kernel_on(bound, default_mode=default_mode, history_file=history, ipython=ipython) as kernel:
            release_free_memory()  # what start-up freed; the process is the kernel's alone
            if bound.owns_file:
                to_process_stderr(f"To connect another client to this kernel, use:\n"
                                  f"    jupyter console --existing {kernel.connection_file}")
            token = trio.lowlevel.current_trio_token()
            watch.serving(lambda: kernel.stop_threadsafe(token))  # called from the watch thread
            try:
                await kernel.wait_for_shutdown()
            finally:
                watch.serving(None)
        nursery.cancel_scope.cancel()
