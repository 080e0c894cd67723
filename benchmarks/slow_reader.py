"""Memory of a kernel whose iopub reader is slow: 1,000,000 printed lines, read at 2 MB/s.

Shows the back-pressure of the iopub outbox: the kernel holds at most 8 MiB of pending
text and zmq at most 1,000 queued messages, so the writing cell waits instead of the
kernel's memory growing with the backlog. Prints the kernel's RSS over time and checks
that every line arrived, in order.

    .venv/bin/python benchmarks/slow_reader.py [--lines N] [--rate MB_PER_S] [--kernel NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import zmq
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=2.0, help="reader bandwidth in MB/s")
    parser.add_argument("--kernel", default="trio")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    km = KernelManager(kernel_name=args.kernel)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        kc.stop_channels()  # from here on a raw SUB socket reads iopub at our own pace
        info = km.get_connection_info(session=False)
        session = Session(key=info["key"], signature_scheme=info["signature_scheme"])
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.RCVHWM, 10)  # a small receive queue: the reader really is slow
        sub.setsockopt(zmq.RCVBUF, 64 * 1024)
        sub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
        shell = ctx.socket(zmq.DEALER)
        shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        welcome_deadline = time.monotonic() + 10
        while sub.poll(100) == 0 and time.monotonic() < welcome_deadline:
            pass  # wait for iopub_welcome (JEP 65) or any message: the subscription is live
        while sub.poll(0):
            sub.recv_multipart()
        request = session.msg("execute_request", {"code": f"for i in range({args.lines}):\n    print(i)",
                                                  "silent": False, "store_history": False,
                                                  "user_expressions": {}, "allow_stdin": False})
        session.send(shell, request)
        msg_id = request["header"]["msg_id"]
        pid = km.provisioner.process.pid  # type: ignore[union-attr]
        start = time.monotonic()
        partial, expected, peak, next_sample = "", 0, 0.0, start
        print(f"{'seconds':>8} {'kernel RSS MiB':>15} {'lines read':>11}")
        done = False
        while not done:
            now = time.monotonic()
            if now - start > args.timeout:
                print("timed out", file=sys.stderr)
                return 1
            if now >= next_sample:
                rss = rss_mb(pid)
                peak = max(peak, rss)
                print(f"{now - start:8.1f} {rss:15.1f} {expected:11,}")
                next_sample = now + 0.5
            if not sub.poll(50):
                continue
            _, frames = session.feed_identities(sub.recv_multipart())
            msg = session.deserialize(frames)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text = msg["content"]["text"]
                lines = (partial + text).split("\n")
                partial = lines.pop()  # a message may end inside a line
                for line in lines:
                    if line != str(expected):
                        print(f"line {expected} missing or out of order (got {line!r})", file=sys.stderr)
                        return 1
                    expected += 1
                time.sleep(len(text) / (args.rate * 1e6))  # a slow reader
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done = True
        elapsed = time.monotonic() - start
        print(f"all {expected:,} lines arrived in order in {elapsed:.1f} s; peak kernel RSS {peak:.1f} MiB")
        return 0 if expected == args.lines else 1
    finally:
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    sys.exit(main())
