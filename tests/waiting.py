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
