"""Standalone `peerlab member` processes forming a real overlay on loopback: over pipes, at a
terminal (a pseudo-terminal driven by pexpect), and with an output nobody reads."""

import io
import os
import re
import socket
import subprocess
import sys

import pexpect
import pytest
from peerproc import ask, read_until, spawn, stop, wait_for_route
from waiting import eventually

from peerlab.cli import main
from peerlab.errors import PeerlabError
from peerlab.realnet.peer import Peer, Shell

#: the first wait before a member dials a lost address again (``--redial``)
REDIAL = 0.2
#: long enough for tries at 0.2, 0.6 and 1.4s: a member that dials again shows it within
QUIET = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(member_id: str, port: int, join: list[int], *flags: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "peerlab.cli",
        "member",
        "--id",
        member_id,
        "--listen",
        f"127.0.0.1:{port}",
        "--redial",
        str(REDIAL),
        *flags,
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
    quit_all(c, b, a)


def quit_all(*members: subprocess.Popen) -> None:
    """Tell every member to quit, then check each exits cleanly."""
    for p in members:
        ask(p, "quit")
    for p in members:
        assert p.wait(timeout=10) == 0


def listen_port(member: subprocess.Popen) -> int:
    """The port a member started by :func:`start` listens on."""
    return int(member.args[member.args.index("--listen") + 1].rpartition(":")[2])


def secure_line(procs, tmp_path, *flags: str) -> tuple[subprocess.Popen, ...]:
    """A line a - b - c of members certified by a network made with ``peerlab keys``, started
    with ``--keys`` and ``flags``; returns them once c has a route to a."""
    keys = tmp_path / "keys"
    assert main(["-q", "keys", "init-network", str(keys)]) == 0
    for name in "abc":
        assert main(["-q", "keys", "issue", str(keys), "--id", name]) == 0
    pa, pb, pc = free_port(), free_port(), free_port()
    secure = ("--keys", str(keys), *flags)
    a, b, c = (
        start("a", pa, [], *secure),
        start("b", pb, [pa], *secure),
        start("c", pc, [pb], *secure),
    )
    procs += [a, b, c]
    read_until(a, "secure mode: network")
    wait_for_route(c, "a", "b")
    return a, b, c


def test_a_secure_overlay_of_three_processes_keeps_an_open_peer_out(procs, tmp_path):
    a, b, c = secure_line(procs, tmp_path)
    ask(c, "send a hello over signed links")
    assert "(path c -> b -> a)" in read_until(a, "<c> hello over signed links")
    z = start("z", free_port(), [listen_port(a)])  # no keys: open mode, which it says
    procs.append(z)
    read_until(z, "open mode: any peer may join")
    refused = read_until(a, "protocol_error")
    assert "error=BadCertificate detail='z' said Hello without a certificate" in refused
    ask(a, "peers")
    listing = [line.split()[0] for line in read_until(a, "b\n").splitlines() if line.strip()]
    assert "b" in listing and "z" not in listing
    quit_all(c, b, a, z)


def test_a_secure_overlay_over_tls_relays(procs, tmp_path):
    a, b, c = secure_line(procs, tmp_path, "--tls")
    ask(c, "send a hello over TLS")
    assert "(path c -> b -> a)" in read_until(a, "<c> hello over TLS")
    quit_all(c, b, a)


def test_a_target_degree_dials_members_learned_of(procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    a = start("a", pa, [])
    procs += [a, start("b", pb, [pa]), start("c", pc, [pb], "--target-degree", "2")]
    read_until(a, "connect peer=c")  # c heard of a from b, and dialled it


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


def test_a_text_too_long_for_a_frame_is_an_error_line_and_the_peer_goes_on(no_leaks):
    out_a, out_b = io.StringIO(), io.StringIO()
    b = Peer("b", "127.0.0.1:0", out=out_b, verbosity=-1)
    a = Peer("a", "127.0.0.1:0", out=out_a, verbosity=-1)
    shell = Shell(a)
    try:
        b.start()
        a.start([b.transport.listen_address])
        eventually(lambda: "b" in a.loop.call(lambda: a.member.routes), "a route from a to b")
        assert not shell.onecmd("send b " + "x" * (1 << 20))
        assert "error: refusing to send a" in out_a.getvalue()
        assert not shell.onecmd("send b still here")
        eventually(lambda: "<a> still here" in out_b.getvalue(), "b getting the second message")
        assert not shell.onecmd("send") and "error: usage: send DST TEXT" in out_a.getvalue()
        assert shell.onecmd("quit")
    finally:
        a.close()
        b.close()


@pytest.fixture
def terminal():
    """Start ``peerlab member`` at a terminal of its own; returns it at its first prompt."""
    started: list[pexpect.spawn] = []

    def open_terminal(member_id: str, port: int, *flags: str) -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            [
                *("-m", "peerlab", "member", "--id", member_id, "--listen", f"127.0.0.1:{port}"),
                *("--redial", str(REDIAL), *flags),
            ],
            encoding="utf-8",
            timeout=15,
            dimensions=(24, 200),
            env={**os.environ, "TERM": "xterm"},
        )
        started.append(child)
        child.expect_exact(f"{member_id}> ")
        child.startup = child.before  # events may come before the first prompt
        return child

    yield open_terminal
    for child in started:
        child.close(force=True)


def expect_connected(child: pexpect.spawn, *peers: str) -> None:
    """Wait until the member has said it connected to each of ``peers``, in any order."""
    seen = set(re.findall(r"\* connect peer=(\S+)", child.startup))
    while not set(peers) <= seen:
        child.expect(r"\* connect peer=(\S+)")
        seen.add(child.match.group(1))


def quiet_for(child: pexpect.spawn, text: str) -> bool:
    """Whether ``text`` stays away from the terminal for :data:`QUIET` seconds."""
    return child.expect_exact([text, pexpect.TIMEOUT], timeout=QUIET) == 1


UP = "\x1b[A"


def test_the_prompt_recalls_history_completes_and_leaves_on_ctrl_c(terminal, procs):
    pa, pb = free_port(), free_port()
    a = terminal("a", pa)
    b = start("b", pb, [pa])
    procs.append(b)
    a.expect_exact("* connect peer=b")
    wait_for_route(b, "a", "a")
    a.send("routes\r")
    a.expect_exact("b via b (1 hops)")
    a.expect_exact("a> ")
    a.send(UP)  # the line typed before comes back
    a.expect_exact("routes")
    a.send("\r")
    a.expect_exact("b via b (1 hops)")
    a.expect_exact("a> ")
    a.send("se\t")  # the command, then the only other member a knows of
    a.expect_exact("send ")
    a.send("\t")
    a.expect_exact("b ")
    a.send("by completion\r")
    read_until(b, "<a> by completion")
    a.sendcontrol("c")
    read_until(b, "reason=peer left: leaving")  # Ctrl-C leaves gracefully
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 130
    assert "Traceback" not in a.before


def test_events_print_above_the_prompt_and_keep_what_is_being_typed(terminal, procs):
    pa, pb = free_port(), free_port()
    a = terminal("a", pa)
    a.send("pee")
    procs.append(start("b", pb, [pa]))
    a.expect_exact("* connect peer=b")
    a.expect_exact("\r\na> pee")  # the prompt again below the event, with what was typed
    a.send("rs\r")
    a.expect_exact("rs\r\nb\r\n")  # the command, completed, ran


def test_disconnect_lasts_until_connect_whoever_dialled(terminal, procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    b = start("b", pb, [])
    procs.append(b)
    a = terminal("a", pa, "--join", f"127.0.0.1:{pb}")  # a keeps b dialled
    c = start("c", pc, [pa])  # c keeps a dialled
    procs.append(c)
    expect_connected(a, "b", "c")
    for peer, them in (("b", b), ("c", c)):
        a.send(f"disconnect {peer}\r")
        a.expect_exact(f"* disconnect peer={peer}")
        read_until(them, "reason=peer left: disconnected by a")
    assert quiet_for(a, "* connect peer="), "a disconnected peer came back"
    a.send("peers\r")
    a.expect_exact("(no peers)")
    a.send(f"connect 127.0.0.1:{pb}\r")
    a.expect_exact("* connect peer=b")


def test_a_peer_that_said_bye_is_not_dialled_again_and_a_lost_one_is(terminal, procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    b, c = start("b", pb, []), start("c", pc, [])
    procs += [b, c]
    a = terminal("a", pa, "--join", f"127.0.0.1:{pb}", f"127.0.0.1:{pc}")
    expect_connected(a, "b", "c")
    ask(b, "quit")
    assert b.wait(timeout=10) == 0
    a.expect_exact("reason=peer left: leaving")
    assert quiet_for(a, "connect_failed"), "a dialled a peer that had said Bye"
    c.kill()  # no Bye: c may come back, so a dials it again
    a.expect_exact("* disconnect peer=c")
    a.expect_exact(f"* connect_failed address=127.0.0.1:{pc}", timeout=QUIET)


def test_a_member_whose_output_nobody_reads_keeps_relaying(no_leaks):
    pb = free_port()
    b = subprocess.Popen(
        [sys.executable, "-m", "peerlab", "member", "--id", "b", "--listen", f"127.0.0.1:{pb}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # never read until the end: the pipe fills up
        stderr=subprocess.STDOUT,
    )
    out_a, out_c = io.StringIO(), io.StringIO()
    a = Peer("a", "127.0.0.1:0", out=out_a, verbosity=-1)
    c = Peer("c", "127.0.0.1:0", out=out_c, verbosity=-1)
    try:
        a.start([f"127.0.0.1:{pb}"], retry_every=REDIAL)
        c.start([f"127.0.0.1:{pb}"], retry_every=REDIAL)
        eventually(lambda: "c" in a.routing_table(), "a route from a to c")
        text = "x" * 500

        def flood() -> None:
            with a.member.batch():
                for _ in range(3000):  # 1.5 MB of lines for b to print: far past any pipe
                    a.member.send("b", text.encode())

        a.loop.call(flood)
        a.send("c", "after the flood")  # behind the flood on the link to b
        eventually(lambda: "<a> after the flood" in out_c.getvalue(), "c getting a's message")
        c.send("a", "and back")
        eventually(lambda: "<c> and back" in out_a.getvalue(), "a getting c's message")
        shown, _ = b.communicate(timeout=30)  # read at last; end of input: b quits
    finally:
        if b.poll() is None:
            b.kill()
            b.communicate()
        a.close()
        c.close()
    assert b.returncode == 0
    lines = shown.decode().splitlines()
    assert any(line.endswith("lines not shown: output was not keeping up") for line in lines)
