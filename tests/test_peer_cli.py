"""Standalone `peerlab member` processes forming a real overlay on loopback."""

import io
import socket
import subprocess
import sys
import time

import pytest
from peerproc import ask, read_until, spawn, stop, wait_for_route

from peerlab.errors import PeerlabError
from peerlab.realnet.peer import Peer


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


def member_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peerlab.cli", "member", "--id", "x", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nonsense"], "--listen: address 'nonsense' is not HOST:PORT"),
        (
            ["--listen", "127.0.0.1:0", "--join", "127.0.0.1:9", "nowhere"],
            "--join: address 'nowhere' is not HOST:PORT",
        ),
        (["--id", "", "--listen", "127.0.0.1:0"], "--id: a member id must not be empty"),
        (
            ["--listen", "127.0.0.1:9777", "--join", "127.0.0.1:9777"],
            "--join: 127.0.0.1:9777 is this member's own --listen address",
        ),
        (
            ["--id", "i" * 129, "--listen", "127.0.0.1:0"],
            "is 129 characters long; the protocol allows at most 128",
        ),
    ],
)
def test_bad_id_or_address_is_bad_input(args, message):
    out = member_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_listening_on_a_port_in_use_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = member_cli("--listen", f"127.0.0.1:{port}")
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: address already in use (EADDRINUSE)" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_peer_that_cannot_listen_leaves_no_thread_or_socket(no_leaks):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(PeerlabError, match="address already in use"):
            Peer("x", address)


def test_a_peer_with_an_id_the_wire_cannot_carry_leaves_no_thread_or_socket(no_leaks):
    with pytest.raises(PeerlabError, match="a member id must not be empty"):
        Peer("", "127.0.0.1:0")


def eventually(condition, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, polling; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


def test_a_text_too_long_for_a_frame_is_an_error_line_and_the_peer_goes_on(no_leaks):
    out_a, out_b = io.StringIO(), io.StringIO()
    b = Peer("b", "127.0.0.1:0", out=out_b, verbose=False)
    a = Peer("a", "127.0.0.1:0", out=out_a, verbose=False)
    try:
        b.start()
        a.start([b.transport.listen_address])
        eventually(lambda: "b" in a.loop.call(lambda: a.member.routes), "a route from a to b")
        assert a.execute("send b " + "x" * (1 << 20))
        assert "error: refusing to send a" in out_a.getvalue()
        assert a.execute("send b still here")
        eventually(lambda: "<a> still here" in out_b.getvalue(), "b getting the second message")
        assert a.execute("send") and "error: usage: send DST TEXT" in out_a.getvalue()
    finally:
        a.close()
        b.close()
