"""IPython configuration from the kernel's command line, as ipykernel accepts it.

nbclient starts kernels whose name begins with ``python`` with
``--HistoryManager.hist_file=:memory:``, and papermill and users pass any traitlets option
through ``extra_arguments`` (``--InteractiveShell.ast_node_interactivity=all``,
``--IPKernelApp.exec_lines=...``). A kernel that rejected them would die before
``kernel_info``, so every such argument is accepted here: traitlets options become a
``Config`` for the shell, ``--profile`` and ``--ipython-dir`` choose IPython's profile
directory (and so its history database), and anything else is one warning on the
kernel's stderr. Pure apart from reading nothing: parsing happens before IPython starts.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from traitlets.config import Config
from traitlets.config.loader import KVArgParseConfigLoader

log = logging.getLogger("kernel.config")

_TRAIT_OPTION = re.compile(r"^--([A-Za-z_]\w*)\.([A-Za-z_]\w*)(=.*)?$")
_APP_SECTIONS = ("IPKernelApp", "InteractiveShellApp")
APPLIED_APP_OPTIONS = ("exec_lines", "exec_files", "extensions", "capture_fd_output")
"""Options of ipykernel's application that this kernel carries out; its other ones are
accepted and ignored with a warning (they configure ipykernel's own machinery)."""


@attrs.frozen
class IPythonOptions:
    """What the command line asked of IPython."""

    config: Config = attrs.field(factory=Config)
    profile: str | None = None
    ipython_dir: str | None = None
    ignored: tuple[str, ...] = ()
    """Arguments that were not understood (each warned about once)."""

    def app_option(self, name: str, default: Any) -> Any:
        """An ``IPKernelApp``/``InteractiveShellApp`` option, ``IPKernelApp`` winning."""
        for section in ("IPKernelApp", "InteractiveShellApp"):
            if section in self.config and name in self.config[section]:
                return self.config[section][name]
        return default


def parse(argv: Sequence[str]) -> IPythonOptions:
    """Sort ``argv`` into traitlets options, profile choice and leftovers (never raises)."""
    trait_args: list[str] = []
    ignored: list[str] = []
    named: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        following = args[i + 1] if i + 1 < len(args) else None
        takes_next = following is not None and not following.startswith("--")
        key, eq, value = arg.partition("=")
        if key in ("--profile", "--ipython-dir"):
            if eq:
                named[key] = value
            elif takes_next:
                named[key] = following  # type: ignore[assignment]
                i += 1
            else:
                ignored.append(arg)
        elif (match := _TRAIT_OPTION.match(arg)) is not None:
            if match.group(3) is None and takes_next:
                trait_args.append(f"{arg}={following}")
                i += 1
            elif match.group(3) is None:
                ignored.append(arg)
            else:
                trait_args.append(arg)
        else:
            ignored.append(arg)
        i += 1
    config = _load(trait_args, ignored)
    return IPythonOptions(config, named.get("--profile"), named.get("--ipython-dir"), tuple(ignored))


def _load(trait_args: list[str], ignored: list[str]) -> Config:
    """traitlets' own parser, one argument at a time so that one bad value spoils nothing."""
    config = Config()
    for arg in trait_args:
        try:
            config.merge(KVArgParseConfigLoader(argv=[arg], aliases={}, flags={}).load_config())
        except (Exception, SystemExit):  # argparse exits on what it cannot parse
            ignored.append(arg)
    return config


def warn_about(options: IPythonOptions) -> None:
    """One warning per argument the kernel does not carry out (on the kernel's stderr)."""
    for arg in options.ignored:
        log.warning("ignoring command-line argument %r: not an IPython option trio-kernel understands", arg)
    for section in _APP_SECTIONS:
        for name in options.config.get(section, {}):
            if name not in APPLIED_APP_OPTIONS:
                log.warning("--%s.%s configures ipykernel's application and has no effect here", section, name)


def shell_config(options: IPythonOptions | None, connection_file: str) -> Config:
    """The shell's config: the command line's, plus the ``IPKernelApp`` section a kernel's
    shell has under ipykernel (``"IPKernelApp" in get_ipython().config`` is a common
    notebook test)."""
    config = Config()
    if options is not None:
        config.merge(options.config)
    config.IPKernelApp.connection_file = connection_file
    return config


def profile_dir(options: IPythonOptions | None) -> Any:
    """IPython's ``ProfileDir`` for ``--profile``/``--ipython-dir`` (None: IPython's default)."""
    if options is None or (options.profile is None and options.ipython_dir is None):
        return None
    return _profile_dir(options)


def _profile_dir(options: IPythonOptions) -> Any:
    from IPython.core.profiledir import ProfileDir
    from IPython.paths import get_ipython_dir

    return ProfileDir.create_profile_dir_by_name(options.ipython_dir or get_ipython_dir(),
                                                 options.profile or "default")


CONFIG_FILES = ("ipython_config.py", "ipython_kernel_config.py")
"""The profile's configuration files ipykernel reads, in this order (later wins)."""


def with_profile_files(options: IPythonOptions) -> IPythonOptions:
    """``options`` with the profile's configuration files under it (the command line
    wins), as ipykernel's application reads them. Standalone kernel only; a broken file
    is logged and skipped."""
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    location = _profile_dir(options).location
    merged = Config()
    for name in CONFIG_FILES:
        try:
            merged.merge(PyFileConfigLoader(name, path=location).load_config())
        except ConfigFileNotFound:
            continue
        except Exception:
            log.exception("could not load %s from %s", name, location)
    merged.merge(options.config)
    return attrs.evolve(options, config=merged)


def _as_list(value: Any) -> list[str]:
    """A list option as given on the command line: ``['a', 'b']`` or one bare value."""
    from traitlets.config.loader import DeferredConfigString

    if isinstance(value, DeferredConfigString):
        try:
            value = ast.literal_eval(str(value))
        except (ValueError, SyntaxError):
            value = str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def run_startup(shell: Any, options: IPythonOptions | None) -> None:
    """What IPython's ``InteractiveShellApp`` runs before the first cell, in its order:
    extensions, ``$PYTHONSTARTUP`` and the profile's ``startup/`` files, ``exec_lines``,
    ``exec_files``. On the shell loop; failures are logged, never fatal. Standalone kernel
    only (``options`` is None for an embedded one)."""
    if options is None:
        return
    for name in _as_list(options.app_option("extensions", [])):
        try:
            shell.extension_manager.load_extension(name)
        except Exception:
            log.exception("could not load IPython extension %r", name)
    files = [os.environ["PYTHONSTARTUP"]] if os.environ.get("PYTHONSTARTUP") else []
    startup_dir = Path(shell.profile_dir.startup_dir)
    files += sorted(str(p) for p in (*startup_dir.glob("*.py"), *startup_dir.glob("*.ipy")))
    for path in files:
        _run_file(shell, path)
    for line in _as_list(options.app_option("exec_lines", [])):
        try:
            result = shell.run_cell(line, store_history=False)
        except Exception:
            log.exception("startup line %r failed", line)
            continue
        if not result.success:
            log.warning("startup line %r failed: %r", line, result.error_before_exec or result.error_in_exec)
    for path in _as_list(options.app_option("exec_files", [])):
        _run_file(shell, path)


def _run_file(shell: Any, path: str) -> None:
    try:
        if path.endswith(".ipy"):
            shell.safe_execfile_ipy(path)
        else:
            shell.safe_execfile(path, shell.user_ns)
    except Exception:
        log.exception("startup file %s failed", path)


def fd_capture(shell: Any, options: IPythonOptions | None, embedded_wants: bool = False) -> Any:
    """Capture fds 1 and 2 into cells, as ipykernel does by default: the standalone kernel
    (``options`` come from its command line) unless ``--IPKernelApp.capture_fd_output=False``;
    an embedded kernel (``options`` None) only when it asked (``open_kernel(capture_fds=True)``)."""
    if options is None:
        wanted: Any = embedded_wants
    else:
        wanted = options.app_option("capture_fd_output", True)
        if isinstance(wanted, str):
            wanted = wanted.strip().lower() not in ("false", "0", "no", "off")
    if not wanted:
        return None
    from .._shell.fdcapture import FdCapture

    return FdCapture(shell)


NOTEBOOK_ENVIRONMENT = {
    "TERM": "xterm-color", "CLICOLOR": "1", "FORCE_COLOR": "1", "CLICOLOR_FORCE": "1",
    "PAGER": "cat", "GIT_PAGER": "cat",
}
"""What ipykernel's shell puts in the environment (``init_environment``): subprocesses
(``!ls``, ``!git log``, ``!pytest``) colour their output, which the notebook renders, and
never wait in a pager, which a notebook cannot drive."""


def notebook_environment() -> None:
    """Set ``NOTEBOOK_ENVIRONMENT``, as ipykernel does (standalone kernel only: an embedded
    kernel leaves the application's environment alone)."""
    os.environ.update(NOTEBOOK_ENVIRONMENT)
