"""A client that does not read its replies for a while still gets every one of them.

zmq's ROUTER silently drops messages for a peer whose queue is full; the kernel's shell
socket is set to refuse instead (ROUTER_MANDATORY) and its socket task retries, so a slow
client gets all its replies, late rather than never.
"""

from __future__ import annotations

import time

import zmq
from jupyter_client.session import Session

from tests.harness import Frontend

N_REQUESTS = 1500
BIG = "'x' * 100_000"  # each reply carries a ~100 KB user expression


def test_replies_to_a_client_that_does_not_read_are_not_lost(fresh_kernel: Frontend) -> None:
    info = fresh_kernel.km.get_connection_info(session=False)
    session = Session(key=info["key"], signature_scheme=info["signature_scheme"])
    context = zmq.Context()
    shell = context.socket(zmq.DEALER)
    shell.setsockopt(zmq.RCVHWM, 1)  # the client keeps almost nothing queued on its side
    shell.setsockopt(zmq.LINGER, 0)
    shell.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
    try:
        sent = []
        for i in range(N_REQUESTS):
            msg = session.msg("execute_request", {
                "code": f"n = {i}", "silent": False, "store_history": False,
                "user_expressions": {"big": BIG}, "allow_stdin": False, "stop_on_error": True})
            session.send(shell, msg)
            sent.append(msg["header"]["msg_id"])
        # Not reading the shell socket: wait on iopub until the last request is done.
        deadline = time.monotonic() + 120
        while True:
            msg = fresh_kernel.iopub(timeout=max(deadline - time.monotonic(), 0.01))
            if (msg["parent_header"].get("msg_id") == sent[-1] and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"):
                break
        received = []
        while len(received) < N_REQUESTS:
            assert shell.poll(int(max(deadline - time.monotonic(), 0.01) * 1000)), (
                f"only {len(received)} of {N_REQUESTS} replies")
            _, frames = session.feed_identities(shell.recv_multipart())
            received.append(session.deserialize(frames, content=False)["parent_header"]["msg_id"])
        assert received == sent
    finally:
        shell.close()
        context.term()
