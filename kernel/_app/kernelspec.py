"""Install, uninstall and list the ``trio`` kernelspec with jupyter_client's machinery, and
write kernelspecs for Jupyter Enterprise Gateway (``trio-kernel eg-kernelspec``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from .._core.enums import RunMode
from .._transport.curve import supported as curve_supported

DEFAULT_NAME = "trio"
DEFAULT_DISPLAY_NAME = "Python 3 (trio)"
LOGO = Path(__file__).parent / "resources"


def spec_dict(display_name: str, env: dict[str, str], default_mode: RunMode | None,
              interrupt_mode: str = "message") -> dict[str, object]:
    """The kernel.json content; argv uses this interpreter's absolute path.

    ``supported_encryption`` tells jupyter_client (``transport_encryption = "auto"``) that it
    may provision CurveZMQ keys for this kernel; listed only when this libzmq has Curve.
    """
    argv = [sys.executable, "-P", "-m", "kernel", "-f", "{connection_file}"]  # -P: see __main__
    if default_mode is not None and default_mode is not RunMode.QUEUE:
        argv[4:4] = ["--default-mode", default_mode.value]
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": interrupt_mode,
        "env": env,
        "metadata": {"debugger": True, **({"supported_encryption": ["curve"]} if curve_supported() else {})},
    }


def install(*, user: bool = False, prefix: str | None = None, name: str = DEFAULT_NAME,
            display_name: str = DEFAULT_DISPLAY_NAME, env: dict[str, str] | None = None,
            default_mode: RunMode | None = None, interrupt_mode: str = "message") -> str:
    """Install the kernelspec and return the directory it went to."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        spec_dir.mkdir()
        (spec_dir / "kernel.json").write_text(
            json.dumps(spec_dict(display_name, env or {}, default_mode, interrupt_mode), indent=2)
        )
        for logo in LOGO.glob("logo-*.png"):
            (spec_dir / logo.name).write_bytes(logo.read_bytes())
        return KernelSpecManager().install_kernel_spec(
            str(spec_dir), kernel_name=name, user=user, prefix=prefix
        )


def uninstall(name: str = DEFAULT_NAME) -> str:
    """Remove the named kernelspec; returns where it was."""
    return KernelSpecManager().remove_kernel_spec(name)


def listing() -> dict[str, str]:
    """Kernelspec names and directories that Jupyter can see."""
    return KernelSpecManager().find_kernel_specs()


DISTRIBUTED_PROXY = "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy"


def gateway_spec_dict(display_name: str, *, python: str, process_proxy: str = DISTRIBUTED_PROXY,
                      proxy_config: dict[str, str] | None = None, ip: str = "0.0.0.0",
                      default_mode: RunMode | None = None, interrupt_mode: str = "message") -> dict[str, object]:
    """kernel.json for Jupyter Enterprise Gateway: EG fills in the ``{...}`` fields and runs
    ``trio-kernel eg-launch`` with ``python`` (the interpreter on the kernel's host)."""
    argv = [python, "-P", "-m", "kernel", "eg-launch",
            "--RemoteProcessProxy.kernel-id", "{kernel_id}",
            "--RemoteProcessProxy.response-address", "{response_address}",
            "--RemoteProcessProxy.public-key", "{public_key}",
            "--RemoteProcessProxy.port-range", "{port_range}",
            "--ip", ip]
    if default_mode is not None and default_mode is not RunMode.QUEUE:
        argv += ["--default-mode", default_mode.value]
    proxy: dict[str, object] = {"class_name": process_proxy}
    if proxy_config:
        proxy["config"] = proxy_config
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": interrupt_mode,
        "env": {},
        "metadata": {"debugger": True, "process_proxy": proxy},
    }


def write_gateway_kernelspec(kernels_dir: Path, name: str, spec: dict[str, object]) -> Path:
    """Write ``kernels_dir/name/kernel.json`` (and the logos); returns the spec's directory."""
    spec_dir = kernels_dir / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))
    for logo in LOGO.glob("logo-*.png"):
        (spec_dir / logo.name).write_bytes(logo.read_bytes())
    return spec_dir


def gateway_kernelspec_main(argv: Sequence[str]) -> int:
    """``trio-kernel eg-kernelspec DIR ...``: write a kernelspec for Enterprise Gateway."""
    parser = argparse.ArgumentParser(
        prog="trio-kernel eg-kernelspec",
        description="Write a kernelspec that Enterprise Gateway launches with `trio-kernel eg-launch`.",
    )
    parser.add_argument("kernels_dir", type=Path, help="a kernels directory EG reads, e.g. "
                        "/usr/local/share/jupyter/kernels")
    parser.add_argument("--name", default="trio_distributed")
    parser.add_argument("--display-name", default="Python 3 (trio, distributed)")
    parser.add_argument("--process-proxy", default=DISTRIBUTED_PROXY, metavar="CLASS")
    parser.add_argument("--remote-hosts", help="comma-separated hosts (DistributedProcessProxy)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with trio-kernel on the kernel hosts (default: this one)")
    parser.add_argument("--ip", default="0.0.0.0", help="address the kernel binds on its host")
    parser.add_argument("--default-mode", choices=[m.value for m in RunMode])
    parser.add_argument("--interrupt-mode", choices=["message", "signal"], default="message")
    ns = parser.parse_args(list(argv))
    spec = gateway_spec_dict(
        ns.display_name, python=ns.python, process_proxy=ns.process_proxy,
        proxy_config={"remote_hosts": ns.remote_hosts} if ns.remote_hosts else None, ip=ns.ip,
        default_mode=RunMode(ns.default_mode) if ns.default_mode else None, interrupt_mode=ns.interrupt_mode,
    )
    print(f"wrote {write_gateway_kernelspec(ns.kernels_dir, ns.name, spec)}")
    return 0
