"""Fixtures for the end-to-end tests: throwaway Jupyter servers and a headless browser.

Two servers, each started once per run: JupyterLab (``lab``) and Notebook 7
(``notebook7``). Each runs from ``sys.executable``'s venv, so it finds the kernelspec under
test in ``sys.prefix/share/jupyter/kernels``, but with fresh config, data and
runtime directories, so nothing from the user's own Jupyter setup leaks in.

Cleanup is the point of most of this module.  Each server runs in its own session
and process group; on teardown it gets SIGTERM (which makes jupyter_server shut
its kernels down), then SIGKILL for the group after a deadline.  Kernels are
launched by jupyter_client in sessions of their own, so the group does not
cover them: they are found through /proc parent links before the server stops,
and any that outlive it are killed and reported as a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests._procs import Process, descendants, wait_gone

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import BrowserContext, Playwright

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is needed; run e2e/setup.sh")

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SERVER_START_TIMEOUT = 90.0
SERVER_STOP_TIMEOUT = 20.0
KERNEL_EXIT_TIMEOUT = 20.0
POLL_INTERVAL = 0.1

# Keep JupyterLab off the network and free of first-run pop-ups.
SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
}
NOTIFICATION_SETTINGS = {"fetchNews": "false", "checkForUpdates": False}

@dataclass(frozen=True)
class Server:
    """A running Jupyter server (JupyterLab or Notebook 7) and what a test needs to reach it."""

    base_url: str
    token: str
    root_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        """Return the URL of ``path`` under the server, authenticated by the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of the server log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """Return a loopback port that was free a moment ago.

    The server is started with ``port_retries=0``, so losing the race fails
    loudly at startup instead of silently serving on another port.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(home: Path) -> dict[str, str]:
    """Return an environment whose Jupyter and IPython directories are all fresh.

    JUPYTER_PATH and JUPYTER_CONFIG_PATH are dropped so that only the venv's
    own kernelspecs and lab extensions are visible.
    """
    env = {key: value for key, value in os.environ.items() if key not in {"JUPYTER_PATH", "JUPYTER_CONFIG_PATH"}}
    for name in ("config", "data", "runtime", "ipython"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    return env


def write_quiet_config(config_dir: Path) -> None:
    """Write the server config and user settings that silence news and update checks."""
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(NOTIFICATION_SETTINGS))


def kernelspec_display_names(env: dict[str, str]) -> dict[str, str]:
    """Return name → display name of the kernelspecs the server will see, asked in its environment."""
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    specs = json.loads(listing.stdout)["kernelspecs"]
    return {name: found["spec"]["display_name"] for name, found in specs.items()}


def start_server(app: str, home: Path, env: dict[str, str]) -> Server:
    """Start ``python -m app`` (jupyterlab or notebook) in its own session, logging to a
    file (a pipe could fill up)."""
    root_dir = home / "root"
    root_dir.mkdir()
    port = free_port()
    token = secrets.token_hex(16)
    argv = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
    ]
    log = home / f"{app}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(f"http://127.0.0.1:{port}", token, root_dir, log, process)


def wait_until_ready(server: Server, timeout: float) -> None:
    """Poll the authenticated status endpoint until it answers, the server dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(server.url("api/status"), timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(POLL_INTERVAL)
    pytest.fail(f"the server did not answer within {timeout}s:\n{server.log_tail()}")


def signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Send ``signum`` to the process group led by ``process``, if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def stop_server(server: Server) -> set[Process]:
    """Stop the server and its kernels whatever state they are in; return kernel survivors.

    Survivors are killed before returning, so the caller only has to report them.
    """
    kernels = descendants(server.process.pid)
    signal_group(server.process, signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        signal_group(server.process, signal.SIGKILL)
        server.process.wait(timeout=SERVER_STOP_TIMEOUT)
    survivors = wait_gone(kernels, KERNEL_EXIT_TIMEOUT)
    for pid, _ in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return survivors


def serve(app: str, home: Path) -> Iterator[Server]:
    """Yield a running ``app`` server with a fresh home; stop it and its kernels after."""
    env = isolated_env(home)
    write_quiet_config(home / "config")
    running = start_server(app, home, env)
    try:
        wait_until_ready(running, SERVER_START_TIMEOUT)
        yield running
    finally:
        survivors = stop_server(running)
    assert not survivors, f"kernel processes outlived {app}: {sorted(survivors)}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, kernel_display_name: str) -> Iterator[Server]:
    """Yield a running JupyterLab that can start ``kernel_name``.

    Asking for ``kernel_display_name`` first makes a missing kernelspec fail
    before a server and a browser are started for nothing.
    """
    yield from serve("jupyterlab", tmp_path_factory.mktemp("jupyterlab"))


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory: pytest.TempPathFactory, kernel_display_name: str) -> Iterator[Server]:
    """Yield a running Notebook 7 server (``jupyter notebook``) that can start ``kernel_name``."""
    yield from serve("notebook", tmp_path_factory.mktemp("notebook7"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Screenshot the page of a test that failed, as ``artifacts/failed-<test>.png``.

    The module's final screenshot shows the page after later tests changed it; this one
    shows what the failing step saw.
    """
    report: pytest.TestReport = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):  # a page that crashed cannot be photographed
            page.screenshot(path=ARTIFACTS / f"failed-{item.name}.png", full_page=True)
    return report


@pytest.fixture(scope="session")
def kernel_display_name(tmp_path_factory: pytest.TempPathFactory, kernel_name: str) -> str:
    """Return the display name of the kernelspec under test, which the page shows once it runs.

    Fails, listing what exists, if the server's environment has no such kernelspec.
    """
    names = kernelspec_display_names(isolated_env(tmp_path_factory.mktemp("kernelspecs")))
    if kernel_name not in names:
        pytest.fail(f"no kernelspec {kernel_name!r} in {sys.prefix}; found {sorted(names)}")
    return names[kernel_name]


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """Return the kernelspec under test: ``TRIO_KERNEL_NAME``, default ``trio``."""
    return os.environ.get("TRIO_KERNEL_NAME", "trio")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Yield a running Playwright driver."""
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Yield Debian's headless chromium with a fresh profile; always closed after.

    A persistent context is used only because it takes an explicit
    ``user_data_dir``; the directory is new for every run.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; run e2e/setup.sh (apt-get install chromium)")
    context = playwright.chromium.launch_persistent_context(
        tmp_path_factory.mktemp("chromium-profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport={"width": 1280, "height": 900},
    )
    try:
        yield context
    finally:
        context.close()
