"""``trio-kernel eg-launch`` and ``eg-kernelspec``: Jupyter Enterprise Gateway's launcher protocol.

Two layers: the launcher against a stand-in for EG written here from EG's protocol (RSA
key, response socket, comm-port requests), which always runs; and the real thing, EG
3.x started from its own venv (``make eg`` builds ``.venv-eg``: EG pins jupyter_client 6
and pyzmq 24, which would downgrade this venv), driving the kernel through EG's REST API
and websocket. Without that venv the second layer is skipped, unless
``TRIO_KERNEL_REQUIRE_EG=1`` (``make eg`` sets it) turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from jupyter_client.blocking.client import BlockingKernelClient

from kernel._app.gateway import (
    GatewayRequest,
    LaunchError,
    encrypt_payload,
    parse_address,
    parse_args,
    parse_port_range,
    parse_request,
)
from tests._procs import descendants, wait_gone
from tests.harness import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
PORT_RANGE = (40000, 41999)
INTERRUPT_MODES = {"trio_eg": "message", "trio_eg_signal": "signal"}
"""The EG kernelspecs the gateway fixture writes, by name."""


# --- pure parts ---------------------------------------------------------------------------

def test_port_range() -> None:
    assert parse_port_range("0..0") == (0, 0)
    assert parse_port_range("40000..41000") == (40000, 41000)
    for bad in ("40000", "40000..40010", "a..b", "41000..40000", "0..70000"):
        with pytest.raises(LaunchError):
            parse_port_range(bad)


def test_address() -> None:
    assert parse_address("10.0.0.5:8877") == ("10.0.0.5", 8877)
    for bad in ("10.0.0.5", "host:port", ":8877", "h:0"):
        with pytest.raises(LaunchError):
            parse_address(bad)


def test_arguments_from_kernelspec_or_container_environment() -> None:
    spec_style = parse_args(["--RemoteProcessProxy.kernel-id", "k1", "--RemoteProcessProxy.response-address",
                             "10.0.0.1:8877", "--RemoteProcessProxy.public-key", "KEY",
                             "--RemoteProcessProxy.port-range", "0..0",
                             "--RemoteProcessProxy.spark-context-initialization-mode", "none"], {})
    # EG's Kubernetes and Docker images pass the same values in the environment.
    env_style = parse_args([], {"KERNEL_ID": "k1", "RESPONSE_ADDRESS": "10.0.0.1:8877", "PUBLIC_KEY": "KEY"})
    assert spec_style == env_style
    assert (env_style.kernel_id, env_style.response_address, env_style.port_range) == ("k1", ("10.0.0.1", 8877), (0, 0))
    with pytest.raises(LaunchError, match="--public-key is required"):
        parse_args(["--kernel-id", "k1", "--response-address", "10.0.0.1:8877"], {})


def test_requests() -> None:
    assert parse_request(b'{"signum": 2}') == GatewayRequest(signum=2)
    assert parse_request(b'{"shutdown": 1}') == GatewayRequest(shutdown=True)
    for bad in (b"", b"[]", b'{"signum": "2"}', b'{"signum": -1}', b'{"signum": true}', b"\xff"):
        assert parse_request(bad) is None


@given(st.dictionaries(st.text(max_size=20), st.one_of(st.integers(), st.text(max_size=40)), max_size=8))
def test_payload_round_trip(info: dict[str, Any]) -> None:
    key = _rsa_key()
    assert _decrypt(encrypt_payload(info, _public_b64(key)), key) == info


def test_bad_public_key_is_a_launch_error() -> None:
    with pytest.raises(LaunchError, match="public key"):
        encrypt_payload({}, base64.b64encode(b"not a key").decode())


# --- the launcher against a stand-in for EG -----------------------------------------------

@pytest.mark.parametrize("how", ["shutdown", "sigterm"])
def test_launcher_reports_serves_and_obeys_the_gateway(how: str) -> None:
    key = _rsa_key()
    kernel_id = str(uuid.uuid4())
    with socket.create_server(("127.0.0.1", 0)) as response:
        response.settimeout(TIMEOUT)
        proc = subprocess.Popen([
            sys.executable, "-m", "kernel", "eg-launch", "--RemoteProcessProxy.kernel-id", kernel_id,
            "--RemoteProcessProxy.response-address", f"127.0.0.1:{response.getsockname()[1]}",
            "--RemoteProcessProxy.public-key", _public_b64(key),
            "--RemoteProcessProxy.port-range", f"{PORT_RANGE[0]}..{PORT_RANGE[1]}", "--ip", "127.0.0.1",
        ])
        try:
            conn, _ = response.accept()
            with conn:
                info = _decrypt(_read_all(conn), key)
            assert info["kernel_id"] == kernel_id and info["pid"] == proc.pid
            for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port", "comm_port"):
                assert PORT_RANGE[0] <= info[name] <= PORT_RANGE[1], name
            conn_file = Path(os.environ["JUPYTER_RUNTIME_DIR"]) / f"kernel-{kernel_id}.json"
            assert conn_file.exists()
            kc = BlockingKernelClient()
            kc.load_connection_info(info)
            kc.start_channels(hb=False)  # without a manager, an early missed beat reads as death
            try:
                kc.wait_for_ready(timeout=TIMEOUT)
                _tell(info["comm_port"], {"signum": 0})  # EG's liveness poll: no effect
                msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
                _wait_for_stream(kc, msg_id)
                _tell(info["comm_port"], {"signum": 2})  # interrupt_mode "signal" goes this way
                reply = kc.get_shell_msg(timeout=TIMEOUT)
                assert reply["parent_header"]["msg_id"] == msg_id
                assert reply["content"]["ename"] == "KeyboardInterrupt"
                assert kc.execute_interactive("x = 1", timeout=TIMEOUT)["content"]["status"] == "ok"
            finally:
                kc.stop_channels()
            _tell(info["comm_port"], {"shutdown": 1} if how == "shutdown" else {"signum": 15})
            assert proc.wait(TIMEOUT) == 0
            assert not conn_file.exists()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_launcher_without_a_gateway_fails_in_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "kernel", "eg-launch", "--kernel-id", "k", "--response-address",
         f"127.0.0.1:{port}", "--public-key", _public_b64(_rsa_key()), "--ip", "127.0.0.1"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("trio-kernel eg-launch: cannot reach Enterprise Gateway")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (Path(os.environ["JUPYTER_RUNTIME_DIR"]) / "kernel-k.json").exists()


# --- the real Enterprise Gateway -------------------------------------------------------------

def _eg_venv() -> Path | None:
    venv = Path(os.environ.get("TRIO_KERNEL_EG_VENV", ROOT / ".venv-eg")).resolve()
    if (venv / "bin" / "jupyter-enterprisegateway").exists():
        return venv
    if os.environ.get("TRIO_KERNEL_REQUIRE_EG") == "1":
        pytest.fail(f"Enterprise Gateway venv missing at {venv} (make eg builds it)")
    return None


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """EG on 127.0.0.1 with a trio kernelspec using DistributedProcessProxy on this host.

    Yields its base URL; on exit stops EG and checks that every process it started ended."""
    venv = _eg_venv()
    if venv is None:
        pytest.skip("no Enterprise Gateway venv (make eg builds .venv-eg)")
    tmp = tmp_path_factory.mktemp("eg")
    kernels = tmp / "share" / "jupyter" / "kernels"
    for name, interrupt_mode in INTERRUPT_MODES.items():
        subprocess.run([sys.executable, "-m", "kernel", "eg-kernelspec", str(kernels), "--name", name,
                        "--python", sys.executable, "--ip", "127.0.0.1", "--remote-hosts", "127.0.0.1",
                        "--interrupt-mode", interrupt_mode], check=True, capture_output=True, timeout=TIMEOUT)
    port, response_port = _free_port(), _free_port()
    env = {**os.environ, "JUPYTER_PATH": str(tmp / "share" / "jupyter"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "EG_RESPONSE_IP": "127.0.0.1", "EG_RESPONSE_PORT": str(response_port),
           "EG_KERNEL_LOG_DIR": str(tmp)}
    with (tmp / "eg.log").open("w") as log:  # the child keeps its own descriptor
        eg = subprocess.Popen([str(venv / "bin" / "jupyter-enterprisegateway"), "--ip=127.0.0.1", f"--port={port}",
                               "--port_retries=0", "--EnterpriseGatewayApp.remote_hosts=127.0.0.1"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    started: set[tuple[int, str]] = set()
    try:
        asyncio.run(_wait_until_up(url, eg))
        yield url
        started = descendants(eg.pid)
    finally:
        started |= descendants(eg.pid)
        eg.terminate()
        try:
            eg.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            eg.kill()
            eg.wait()
        leftovers = wait_gone(started, TIMEOUT)
        for pid, _ in leftovers:
            os.kill(pid, 9)
    assert not leftovers, f"processes left behind by EG's kernels: {leftovers}"
    assert not list(Path(os.environ["JUPYTER_RUNTIME_DIR"]).glob("kernel-*.json"))


@pytest.mark.parametrize("spec", list(INTERRUPT_MODES))
def test_gateway_kernel_lifecycle(gateway: str, spec: str) -> None:
    """Create through REST, execute over the websocket, interrupt, restart, shut down.

    With ``interrupt_mode: message`` EG sends ``interrupt_request`` on control; with
    ``signal`` it sends ``{"signum": 2}`` to the launcher's comm port."""
    asyncio.run(_lifecycle(gateway, spec))


async def _lifecycle(url: str, spec: str) -> None:
    from tornado.httpclient import AsyncHTTPClient

    http = AsyncHTTPClient()
    # EG refuses kernels for user root; KERNEL_USERNAME names the user the kernel is for.
    created = await http.fetch(f"{url}/api/kernels", method="POST", request_timeout=60,
                               body=json.dumps({"name": spec, "env": {"KERNEL_USERNAME": "tester"}}))
    kernel_id = json.loads(created.body)["id"]
    async with _Channels(url, kernel_id) as ws:
        reply, out = await ws.execute("import os, trio\nawait trio.sleep(0.01)\nx = 42\nprint(os.getpid())")
        assert reply["status"] == "ok"
        first_pid = int(out)
        first = _process(first_pid)  # (pid, start time): immune to pid reuse
        msg_id = await ws.send("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
        await ws.stream_of(msg_id)
        assert (await http.fetch(f"{url}/api/kernels/{kernel_id}/interrupt", method="POST", body="")).code == 204
        reply = await ws.reply_to(msg_id)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert (await ws.execute("print(x)"))[1] == "42\n"  # still the same kernel
    restarted = await http.fetch(f"{url}/api/kernels/{kernel_id}/restart", method="POST", body="", request_timeout=60)
    assert restarted.code == 200
    assert wait_gone({first}, TIMEOUT) == set()
    # The restarted kernel's launcher picked new ports, so clients reconnect (as JupyterLab does).
    async with _Channels(url, kernel_id) as ws:
        reply, out = await ws.execute("import os\nprint(os.getpid(), 'x' in globals())")
        pid, has_x = out.split()
        assert reply["status"] == "ok" and int(pid) != first_pid and has_x == "False"
    second = _process(int(pid))
    assert (await http.fetch(f"{url}/api/kernels/{kernel_id}", method="DELETE")).code == 204
    assert wait_gone({second}, TIMEOUT) == set()
    gone = await http.fetch(f"{url}/api/kernels/{kernel_id}", raise_error=False)
    assert gone.code == 404


class _Channels:
    """A websocket on EG's ``/api/kernels/ID/channels``, speaking the JSON message format."""

    def __init__(self, url: str, kernel_id: str) -> None:
        self.url = url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        self.session = uuid.uuid4().hex
        self.stash: list[dict[str, Any]] = []

    async def __aenter__(self) -> _Channels:
        from tornado.websocket import websocket_connect

        self.ws = await asyncio.wait_for(websocket_connect(self.url), TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.ws.close()

    async def send(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "tester",
                       "session": self.session, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        return msg_id

    async def _next(self, msg_id: str, msg_type: str, state: str | None = None) -> dict[str, Any]:
        """The next message of ``msg_type`` (a status: in ``state``) parented to ``msg_id``;
        others are kept for later."""
        def wanted(msg: dict[str, Any]) -> bool:
            return (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == msg_type
                    and (state is None or msg["content"].get("execution_state") == state))

        for i, msg in enumerate(self.stash):
            if wanted(msg):
                return self.stash.pop(i)
        while True:
            raw = await asyncio.wait_for(self.ws.read_message(), TIMEOUT)
            assert raw is not None, "EG closed the websocket"
            msg = json.loads(raw)
            if wanted(msg):
                return msg
            self.stash.append(msg)

    async def stream_of(self, msg_id: str) -> str:
        return str((await self._next(msg_id, "stream"))["content"]["text"])

    async def reply_to(self, msg_id: str) -> dict[str, Any]:
        return dict((await self._next(msg_id, "execute_reply"))["content"])

    async def execute(self, code: str) -> tuple[dict[str, Any], str]:
        """Run ``code``; its reply and its stdout (everything up to its idle status)."""
        msg_id = await self.send(code)
        await self._next(msg_id, "status", "idle")  # iopub and shell are not ordered
        reply = await self.reply_to(msg_id)
        out = "".join(m["content"]["text"] for m in self.stash
                      if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream")
        return reply, out


async def _wait_until_up(url: str, eg: subprocess.Popen[bytes]) -> None:
    """Poll EG's REST API until it answers (EG has no readiness signal we can wait on)."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    http = AsyncHTTPClient()
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        assert eg.poll() is None, "Enterprise Gateway exited at start-up (see eg.log)"
        try:
            await http.fetch(f"{url}/api/kernelspecs", request_timeout=2)
            return
        except (OSError, HTTPClientError):
            await asyncio.sleep(0.1)
    raise TimeoutError("Enterprise Gateway did not answer within 30 s")


# --- helpers ------------------------------------------------------------------------------

def _rsa_key() -> rsa.RSAPrivateKey:
    return _KEY


_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # EG's own key size


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    """The public key as EG passes it: PEM without header, footer and newlines (DER, base64)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _decrypt(payload: bytes, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """What EG's ResponseManager does with a version-1 payload."""
    envelope = json.loads(base64.b64decode(payload))
    assert envelope["version"] == 1
    aes_key = key.decrypt(base64.b64decode(envelope["key"]), rsa_padding.PKCS1v15())
    decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
    padded = decryptor.update(base64.b64decode(envelope["conn_info"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    result: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
    return result


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def _tell(port: int, request: dict[str, Any]) -> None:
    """Send one request to the launcher's comm port the way EG does (connect, send, close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(json.dumps(request).encode())


def _wait_for_stream(kc: BlockingKernelClient, msg_id: str) -> None:
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def _process(pid: int) -> tuple[int, str]:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return pid, fields[19]
