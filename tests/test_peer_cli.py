"""Standalone `peerlab member` processes forming a real overlay on loopback."""

import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(member_id: str, port: int, join: list[int]) -> subprocess.Popen:
    args = [
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
        args += ["--join", *[f"127.0.0.1:{p}" for p in join]]
    return subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def ask(proc: subprocess.Popen, command: str) -> None:
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


def read_until(proc: subprocess.Popen, needle: str, timeout: float = 15) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{needle!r} not seen; output so far:\n{seen}")
        line = proc.stdout.readline()
        seen += line
    return seen


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        for stream in (p.stdin, p.stdout):
            stream.close()


def test_three_processes_relay_a_message(procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    a = start("a", pa, [])
    procs.append(a)
    read_until(a, "listening on")
    b = start("b", pb, [pa])
    procs.append(b)
    c = start("c", pc, [pb])
    procs.append(c)
    read_until(c, "connect peer=b")
    # wait until c has a route to a, asking with the routes command
    deadline = time.monotonic() + 15
    while True:
        ask(c, "routes")
        out = c.stdout.readline()
        if out.strip().startswith("a via b"):
            break
        assert time.monotonic() < deadline, out
    ask(c, "send a hello across two hops")
    got = read_until(a, "<c> hello across two hops")
    assert "(path c -> b -> a)" in got
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
