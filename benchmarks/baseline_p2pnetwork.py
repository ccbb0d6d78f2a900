"""Baseline for bench_relay.py: the p2pnetwork package sending 100-byte messages A -> B.

Runs in a process of its own, in the benchmarks' environment (benchmarks/README.md):
    .venv-bench/bin/python benchmarks/baseline_p2pnetwork.py 5000
Prints "RESULT n": messages delivered per wall second (both nodes on 127.0.0.1).
"""

import socket
import sys
import threading
import time

from p2pnetwork.node import Node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    done = threading.Event()
    got = [0, 0.0]

    def on_event(event, node, other, data):
        if event == "node_message":
            got[0] += 1
            if got[0] == 1:
                got[1] = time.perf_counter()
            if got[0] >= count:
                done.set()

    b = Node("127.0.0.1", free_port(), callback=on_event)
    a = Node("127.0.0.1", free_port())
    b.start()
    a.start()
    a.connect_with_node("127.0.0.1", b.port)
    deadline = time.monotonic() + 10
    while not a.all_nodes and time.monotonic() < deadline:
        time.sleep(0.01)
    payload = "x" * 100
    t0 = time.perf_counter()
    for _ in range(count):
        a.send_to_nodes(payload)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    a.stop()
    b.stop()
    a.join(10)
    b.join(10)
    print(f"RESULT {got[0] / elapsed}", flush=True)


if __name__ == "__main__":
    main()
