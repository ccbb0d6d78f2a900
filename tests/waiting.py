"""The one way tests wait for something real to happen: poll a condition until a deadline."""

import time

from peerlab import trace as ev


def eventually(condition, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, polling; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


def messages_arrive(net, src: str, dst: str, count: int = 10) -> None:
    """Send ``count`` messages from ``src`` to ``dst`` on a live in-process network (one with
    ``call``, ``members`` and a tracer) and wait until every one is delivered."""
    sender = net.members[src]
    sent = {net.call(lambda: sender.send(dst, b"still here")) for _ in range(count)}

    def delivered() -> set[str]:
        return {e.fields["msg_id"] for e in net.tracer.of_kind(ev.DELIVER)} & sent

    eventually(lambda: delivered() == sent, f"delivery of {src}'s messages to {dst}")


def closed_by_peer(sock, timeout: float = 5.0) -> bool:
    """Whether the other end closes (or resets) the connection of ``sock`` (a socket with a
    timeout, which reads are retried through) within ``timeout`` seconds; what it sends
    meanwhile is read and dropped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 16):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            continue
    return False
