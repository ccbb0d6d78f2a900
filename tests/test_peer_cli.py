"""Standalone `peerlab member` processes forming a real overlay on loopback."""

import socket
import subprocess
import sys

import pytest
from peerproc import ask, read_until, spawn, stop, wait_for_route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(member_id: str, port: int, join: list[int]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "peerlab.cli",
        "member",
        "--id",
        member_id,
        "--listen",
        f"127.0.0.1:{port}",
    ]
    if join:
        cmd += ["--join", *[f"127.0.0.1:{p}" for p in join]]
    return spawn(cmd)


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    stop(started)


def test_three_processes_relay_a_message(procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    # started in the "wrong" order: c and b retry their joins until the others listen
    c = start("c", pc, [pb])
    b = start("b", pb, [pa])
    a = start("a", pa, [])
    procs += [a, b, c]
    read_until(c, "connect peer=b")
    wait_for_route(c, "a", "b")
    ask(c, "send a hello across two hops")
    assert "(path c -> b -> a)" in read_until(a, "<c> hello across two hops")
    ask(a, "send nobody x")
    assert "drop" in read_until(a, "reason=no_route")
    ask(b, "frobnicate")
    assert "error: cannot understand 'frobnicate'" in read_until(b, "error:")
    for p in (c, b, a):
        ask(p, "quit")
    for p in (c, b, a):
        assert p.wait(timeout=10) == 0


def test_bad_listen_address_is_bad_input():
    out = subprocess.run(
        [sys.executable, "-m", "peerlab.cli", "member", "--id", "x", "--listen", "nonsense"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "address 'nonsense' is not HOST:PORT" in out.stderr
    assert "Traceback" not in out.stderr
