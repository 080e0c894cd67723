"""Security defaults over real sockets: signatures, replays, connection files, binding, keys.

Tampered frames are built by hand with a ``Session`` and sent through a raw DEALER socket
to a kernel started as ``python -m kernel -f FILE`` whose log we read. A message the kernel
drops must (1) get no reply, (2) not run, (3) be logged, and (4) leave the kernel answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import session as jc_session

from kernel._core.enums import Channel
from kernel._core.wire import WireError, decode, make_session
from tests._fuzzhelpers import (
    DELIM,
    TIMEOUT,
    KernelProcess,
    RawChannel,
    kernel_process,
    new_connection_file,
    own_connection_file,
    wait_ready,
)

DROPPED = "dropped a message on shell"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelProcess]:
    tmp = tmp_path_factory.mktemp("security")
    path, _ = new_connection_file(tmp)
    with kernel_process(tmp, path) as kp:
        assert kp.info is not None
        wait_ready(kp.info)
        yield kp


@pytest.fixture
def shell(secure: KernelProcess) -> Iterator[RawChannel]:
    assert secure.info is not None
    with RawChannel(secure.info) as chan:
        yield chan


def _attack(name: str) -> dict[str, Any]:
    """An execute_request that would leave a trace in the namespace if it ever ran."""
    return {"code": f"{name} = True", "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}


def _assert_dropped(kp: KernelProcess, chan: RawChannel, msg_id: str, name: str, reason: str,
                    logged_before: int) -> None:
    """No reply to ``msg_id``, no trace of ``name``, a log line, and a working kernel."""
    probe = chan.request("execute_request", {
        "code": "probe = 1", "silent": False, "store_history": True, "allow_stdin": False,
        "user_expressions": {"ran": f"{name!r} in globals()"}, "stop_on_error": True,
    })
    assert probe["content"]["status"] == "ok"
    assert probe["content"]["user_expressions"]["ran"]["data"]["text/plain"] == "False", "tampered message ran"
    # The attack was queued before the probe on the same shell queue: its reply, had there
    # been one, would have arrived first.
    assert chan.replies_to(msg_id) == []
    kp.wait_log(DROPPED, logged_before + 1)
    assert reason in kp.log_text()


def test_verification_is_hmac_sha256_and_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel signs with HMAC-SHA256 and compares signatures with ``hmac.compare_digest``."""
    calls: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(bytes(a))
        return real(a, b)

    # wherever the wire layer takes it from: the hmac module or jupyter_client's import of it
    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setattr(jc_session, "compare_digest", spy)
    session = make_session(b"secret")
    parts = [b'{"msg_id": "a"}', b"{}", b"{}", b"{}"]
    assert session.sign(parts) == hmac.new(b"secret", b"".join(parts), hashlib.sha256).hexdigest().encode()
    client = jc_session.Session(key=b"secret")
    frames = client.serialize(client.msg("kernel_info_request", {}))
    good = decode(session, frames, Channel.SHELL, 0.0)
    assert good.msg_type == "kernel_info_request"
    assert len(calls) == 1
    forged = [*frames[:1], b"0" * 64, *frames[2:]]
    with pytest.raises(WireError, match="Invalid Signature"):
        decode(session, forged, Channel.SHELL, 0.0)
    assert len(calls) == 2 and calls[1] == b"0" * 64


def test_unsigned_message_dropped(secure: KernelProcess, shell: RawChannel) -> None:
    before = secure.log_count(DROPPED)
    msg = shell.message("execute_request", _attack("unsigned"))
    frames = shell.frames(msg)
    frames[1] = b""
    shell.send_frames(frames)
    _assert_dropped(secure, shell, msg["header"]["msg_id"], "unsigned", "Unsigned Message", before)


@pytest.mark.parametrize("how", ["flipped", "other_key", "tampered_content", "garbage"])
def test_wrongly_signed_message_dropped(secure: KernelProcess, shell: RawChannel, how: str) -> None:
    assert secure.info is not None
    before = secure.log_count(DROPPED)
    name = f"wrong_{how}"
    msg = shell.message("execute_request", _attack(name))
    frames = shell.frames(msg)
    if how == "flipped":
        sig = bytearray(frames[1])
        sig[-1] = ord("0") if sig[-1] != ord("0") else ord("1")
        frames[1] = bytes(sig)
    elif how == "other_key":
        frames[1] = jc_session.Session(key=b"not the key").sign(frames[2:6])
    elif how == "tampered_content":
        # a correctly signed harmless message whose content is swapped after signing
        harmless = shell.message("execute_request", {"code": "pass"})
        harmless["header"] = msg["header"]
        signed = shell.frames(harmless)
        frames = [*signed[:5], frames[5]]
    else:
        frames[1] = os.urandom(32).hex().encode()
    shell.send_frames(frames)
    _assert_dropped(secure, shell, msg["header"]["msg_id"], name, "Invalid Signature", before)


def test_replayed_message_dropped(secure: KernelProcess, shell: RawChannel) -> None:
    msg = shell.message("execute_request", {**_attack("replayed"), "code": "replayed = replayed + 1 "
                                            "if 'replayed' in globals() else 1"})
    frames = shell.frames(msg)
    shell.send_frames(frames)
    first = shell.reply_to(msg["header"]["msg_id"])
    assert first["content"]["status"] == "ok"
    before = secure.log_count(DROPPED)
    shell.send_frames(frames)  # byte for byte the same, signature included
    probe = shell.request("execute_request", {"code": "", "user_expressions": {"n": "replayed"}})
    assert probe["content"]["user_expressions"]["n"]["data"]["text/plain"] == "1", "replay ran"
    assert len(shell.replies_to(msg["header"]["msg_id"])) == 1
    secure.wait_log(DROPPED, before + 1)
    assert "Duplicate Signature" in secure.log_text()


def test_replay_on_another_connection_dropped(secure: KernelProcess) -> None:
    """Replay protection is per kernel, not per client socket."""
    assert secure.info is not None
    with RawChannel(secure.info) as first, RawChannel(secure.info) as second:
        msg = first.message("kernel_info_request")
        frames = first.frames(msg)
        first.send_frames(frames)
        first.reply_to(msg["header"]["msg_id"])
        before = secure.log_count(DROPPED)
        second.send_frames(frames)
        assert second.request("kernel_info_request")["content"]["status"] == "ok"
        assert second.replies_to(msg["header"]["msg_id"]) == []
        secure.wait_log(DROPPED, before + 1)


def test_control_channel_verified_too(secure: KernelProcess) -> None:
    assert secure.info is not None
    with RawChannel(secure.info, "control_port") as control:
        msg = control.message("shutdown_request", {"restart": False})
        frames = control.frames(msg)
        frames[1] = b"f" * 64
        control.send_frames(frames)
        assert control.request("kernel_info_request")["content"]["status"] == "ok"
        assert control.replies_to(msg["header"]["msg_id"]) == []
        secure.wait_log("dropped a message on control")
    assert secure.proc.poll() is None, "a forged shutdown_request stopped the kernel"


# -- connection files, binding, keys -----------------------------------------------------


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if int(hexport, 16) == port and fields[3] == "0A":
                found.append(addr)
    return found


PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _check_own_file(path: Path) -> dict[str, Any]:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    info = json.loads(path.read_text())
    assert info["ip"] == "127.0.0.1"
    assert info["signature_scheme"] == "hmac-sha256"
    assert len(info["key"]) >= 32
    for name in PORTS:
        assert _listening(info[name]) == ["0100007F"], (name, _listening(info[name]))
    return info


def test_cli_connection_file_is_0600_and_loopback(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    with kernel_process(tmp_path, None, env={"JUPYTER_RUNTIME_DIR": str(runtime)}) as kp:
        path = own_connection_file(kp)
        assert path.parent == runtime
        info = _check_own_file(path)
        wait_ready(info)
        kp.stop()
        assert kp.proc.returncode == 0
    assert not path.exists()


EMBED = textwrap.dedent("""
    import json, os, stat, sys, trio
    from kernel import open_kernel

    async def main(ip):
        async with open_kernel(ip=ip) as k:
            path = k.connection_file
            print(json.dumps({"path": str(path), "mode": stat.S_IMODE(os.stat(path).st_mode),
                              "info": k.connection_info}), flush=True)
            sys.stdin.readline()
        print(json.dumps({"removed": not path.exists()}), flush=True)

    trio.run(main, sys.argv[1])
""")


def _embedded(tmp_path: Path, ip: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run ``open_kernel(ip=ip)`` in a fresh interpreter; return its report, info and log."""
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    proc = subprocess.Popen([sys.executable, "-c", "import logging; logging.basicConfig();" + EMBED, ip],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = json.loads(proc.stdout.readline())
        info = first["info"]
        wait_ready(info if ip == "127.0.0.1" else {**info, "ip": "127.0.0.1"})
        seen = {name: _listening(info[name]) for name in PORTS}
        out, err = proc.communicate("\n", timeout=TIMEOUT)
        first["listening"] = seen
        return first, json.loads(out), err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_embedded_connection_file_is_0600_and_loopback(tmp_path: Path) -> None:
    report, end, log = _embedded(tmp_path, "127.0.0.1")
    assert report["mode"] == 0o600
    assert report["info"]["ip"] == "127.0.0.1"
    assert len(report["info"]["key"]) >= 32
    assert all(addrs == ["0100007F"] for addrs in report["listening"].values()), report["listening"]
    assert end == {"removed": True}
    assert "reachable beyond" not in log


def test_embedded_other_address_warns(tmp_path: Path) -> None:
    report, end, log = _embedded(tmp_path, "0.0.0.0")
    assert "binding to 0.0.0.0" in log and "reachable beyond this machine" in log
    assert report["mode"] == 0o600
    assert all(addrs == ["00000000"] for addrs in report["listening"].values()), report["listening"]
    assert end == {"removed": True}


def test_cli_other_address_warns(tmp_path: Path) -> None:
    path, info = new_connection_file(tmp_path, ip="0.0.0.0")
    with kernel_process(tmp_path, path) as kp:
        wait_ready({**info, "ip": "127.0.0.1"})
        kp.wait_log("reachable beyond this machine")


def test_loopback_file_does_not_warn(secure: KernelProcess) -> None:
    assert "reachable beyond" not in secure.log_text()
    assert "empty key" not in secure.log_text()


def test_empty_key_when_the_file_says_so(tmp_path: Path) -> None:
    path, info = new_connection_file(tmp_path, key="")
    with kernel_process(tmp_path, path) as kp:
        kp.wait_log("empty key")
        with RawChannel(info, key=b"") as chan:
            msg = chan.message("kernel_info_request")
            parts = [chan.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")]
            chan.send_frames([DELIM, b"", *parts])  # unsigned, as an empty key means
            reply = chan.reply_to(msg["header"]["msg_id"])
            assert reply["content"]["status"] == "ok"


def test_missing_key_is_not_an_empty_key(tmp_path: Path) -> None:
    """A connection file without a ``key`` is refused rather than run unsigned."""
    path, _ = new_connection_file(tmp_path, key=None)
    with kernel_process(tmp_path, path) as kp:
        assert kp.proc.wait(TIMEOUT) == 2
        assert 'has no "key"' in kp.log_text()


def test_signed_kernel_refuses_unsigned_when_key_set(secure: KernelProcess) -> None:
    """The converse of the empty-key case: with a key, a reader with no key gets nothing."""
    assert secure.info is not None
    with RawChannel(secure.info, key=b"") as chan:
        before = secure.log_count(DROPPED)
        chan.send("kernel_info_request")
        secure.wait_log(DROPPED, before + 1)
        assert chan.sock.poll(100) == 0


def test_open_kernel_default_ip_is_loopback() -> None:
    import inspect

    from kernel import open_kernel

    assert inspect.signature(open_kernel).parameters["ip"].default == "127.0.0.1"
