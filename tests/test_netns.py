"""Members in separate Linux network namespaces joined by veth pairs (root and `ip` needed).

Three namespaces in a line: a <-> b <-> c. a and c cannot reach each other at the IP level, so a
message from c to a only arrives because member b relays it through the overlay.
"""

import os
import shutil
import subprocess
import sys

import pytest
from peerproc import ask, read_until, spawn, stop, wait_for_route

pytestmark = pytest.mark.netns

NS = {"a": "peerlab-t-a", "b": "peerlab-t-b", "c": "peerlab-t-c"}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def can_use_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = subprocess.run(["ip", "netns", "add", "peerlab-t-probe"], capture_output=True)
    if probe.returncode != 0:
        return f"ip netns add failed: {probe.stderr.decode().strip()}"
    ip("netns", "del", "peerlab-t-probe")
    return None


@pytest.fixture
def namespaces():
    reason = can_use_netns()
    if reason:
        pytest.skip(reason)
    for ns in NS.values():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        ip("netns", "add", ns)
    try:
        for (x, y), net in {("a", "b"): "10.201.1", ("b", "c"): "10.201.2"}.items():
            vx, vy = f"pl{x}{y}0", f"pl{x}{y}1"
            ip(
                "link",
                "add",
                vx,
                "netns",
                NS[x],
                "type",
                "veth",
                "peer",
                "name",
                vy,
                "netns",
                NS[y],
            )
            ip("-n", NS[x], "addr", "add", f"{net}.1/24", "dev", vx)
            ip("-n", NS[y], "addr", "add", f"{net}.2/24", "dev", vy)
            ip("-n", NS[x], "link", "set", vx, "up")
            ip("-n", NS[y], "link", "set", vy, "up")
        for ns in NS.values():
            ip("-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def member(name: str, listen: str, join: list[str]) -> subprocess.Popen:
    cmd = [
        "ip",
        "netns",
        "exec",
        NS[name],
        sys.executable,
        "-m",
        "peerlab.cli",
        "member",
        "--id",
        name,
        "--listen",
        listen,
    ]
    if join:
        cmd += ["--join", *join]
    return spawn(cmd)


def test_overlay_relays_across_namespaces(namespaces):
    procs = []
    try:
        a = member("a", "10.201.1.1:9100", ["10.201.1.2:9100"])
        c = member("c", "10.201.2.2:9100", ["10.201.2.1:9100"])
        b = member("b", "0.0.0.0:9100", [])
        procs += [a, b, c]
        read_until(a, "connect peer=b", timeout=20)
        read_until(c, "connect peer=b", timeout=20)
        wait_for_route(c, "a", "b")
        ask(c, "send a across namespaces")
        assert "(path c -> b -> a)" in read_until(a, "<c> across namespaces")
        for p in procs:
            ask(p, "quit")
        for p in procs:
            assert p.wait(timeout=10) == 0
    finally:
        stop(procs)
