"""Members over real loopback TCP."""

import logging
import socket
import struct
import time
import weakref

import networkx as nx
import pytest

from peerlab import trace as ev
from peerlab.errors import UnknownMember
from peerlab.linkmodel import LinkModel
from peerlab.member import MemberConfig
from peerlab.oracle import table_errors
from peerlab.realnet import EventLoop, TcpLimits, TcpNetwork, TcpTransport
from peerlab.realnet.loop import log as loop_log
from peerlab.realnet.transport import EARLY
from peerlab.wire import (
    PROTOCOL_VERSION,
    Advert,
    Adverts,
    Data,
    Hello,
    encode_advert,
    encode_frame,
)

FAST = MemberConfig(handshake_timeout=1.0, keepalive_interval=0.2, dead_timeout=0.8)
CONVERGE = 15.0


@pytest.fixture
def net(no_leaks):
    n = TcpNetwork(seed=3, config=FAST, limits=TcpLimits(max_write_buffer=256 << 10))
    yield n
    n.close()
    assert n.loop.failures == 0


def build(net: TcpNetwork, g: nx.Graph) -> list[tuple[str, str]]:
    for node in sorted(g):
        net.add_member(f"m{node}")
    links = sorted({tuple(sorted((f"m{u}", f"m{v}"))) for u, v in g.edges})
    for a, b in links:
        net.connect(a, b)
    return links


def converged(net: TcpNetwork, links) -> bool:
    return net.links() == sorted(links) and table_errors(net.tables(), links) == []


def wait_converged(net, links, timeout=CONVERGE):
    assert net.run_until(lambda: all(not m.routes_pending for m in net.members.values()), timeout)
    ok = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (ok := converged(net, links)):
        time.sleep(0.01)
    assert ok, table_errors(net.tables(), links)


@pytest.mark.parametrize(
    "g",
    [nx.path_graph(5), nx.cycle_graph(6), nx.random_regular_graph(3, 10, seed=2)],
    ids=["line", "ring", "random"],
)
def test_topologies_match_oracle_and_relay(net, g):
    links = build(net, g)
    wait_converged(net, links)
    src, dst = "m0", f"m{max(g.nodes)}"
    msg_id = net.call(lambda: net.members[src].send(dst, b"over real sockets"))
    assert net.run_until(
        lambda: any(
            e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id for e in net.tracer.events
        ),
        5,
    )
    path = next(
        e.fields["path"]
        for e in net.tracer.events
        if e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id
    )
    assert len(path) - 1 == nx.shortest_path_length(g, 0, max(g.nodes))


def test_cut_link_and_crash_reconverge(net):
    links = build(net, nx.cycle_graph(6))
    wait_converged(net, links)
    net.link_down("m0", "m1")
    links = [x for x in links if x != ("m0", "m1")]
    wait_converged(net, links)
    net.crash("m3")
    links = [x for x in links if "m3" not in x]
    wait_converged(net, links)
    reasons = {
        e.fields["reason"]
        for e in net.tracer.events
        if e.kind == ev.DISCONNECT and e.member in ("m2", "m4")
    }
    assert any("reset" in r or "closed by peer" in r for r in reasons), reasons
    net.restart("m3", join=["m2", "m4"])
    links = sorted([*links, ("m2", "m3"), ("m3", "m4")])
    wait_converged(net, links)


def test_silent_cut_found_by_keepalive(net):
    links = build(net, nx.path_graph(3))
    wait_converged(net, links)
    net.link_down("m1", "m2", silent=True)
    t0 = time.monotonic()
    wait_converged(net, [("m0", "m1")])
    assert time.monotonic() - t0 < FAST.dead_timeout + FAST.keepalive_interval + 2


def test_a_loop_that_falls_behind_does_not_take_its_peers_for_silent(net):
    """Every member on one loop: a pass of the loop three dead timeouts long (CPU work, as 400
    members flooding at once make) runs every keepalive late, with the peers' Pings unread. No
    peer is called dead for it."""
    links = build(net, nx.path_graph(3))
    wait_converged(net, links)
    net.call(net.loop.take_lag)

    def busy() -> None:
        end = time.monotonic() + 3 * FAST.dead_timeout
        while time.monotonic() < end:
            pass

    net.call(busy)
    net.call(lambda: None)  # the pass that ran the stall has run its late timers too
    assert net.loop_lag().seconds > 2 * FAST.dead_timeout
    closed = [e.fields["reason"] for e in net.tracer.of_kind(ev.DISCONNECT)]
    assert closed == []
    assert net.links() == links


def test_partition_and_heal(net):
    links = build(net, nx.complete_graph(4))
    wait_converged(net, links)
    net.partition([["m0", "m1"], ["m2", "m3"]])
    wait_converged(net, [("m0", "m1"), ("m2", "m3")])
    net.heal()
    for a in ("m0", "m1"):
        for b in ("m2", "m3"):
            net.connect(a, b)
    wait_converged(net, links)


def raw_client(net, member):
    host, port = net.address_of(member).rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def reads_until_closed(s: socket.socket, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


HOSTILE = {
    "garbage": (b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1", "MalformedMessage"),
    "oversize": (struct.pack(">I", 0xFFFFFFF0), "FrameTooLarge"),
    "data_before_hello": (encode_frame(Data("x", "a", "b", 3, ["a"], b"")), "HandshakeError"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_bytes_cost_only_that_connection(net, kind):
    links = build(net, nx.path_graph(3))
    wait_converged(net, links)
    payload, error = HOSTILE[kind]
    with raw_client(net, "m1") as s:
        s.sendall(payload)
        reads_until_closed(s)  # the member closes on us
    errors = [e for e in net.tracer.events if e.kind == ev.PROTOCOL_ERROR and e.member == "m1"]
    assert [e.fields["error"] for e in errors] == [error]
    assert errors[0].fields["detail"]
    assert converged(net, links)
    msg_id = net.call(lambda: net.members["m0"].send("m2", b"still routing"))
    assert net.run_until(
        lambda: any(
            e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id for e in net.tracer.events
        ),
        5,
    )


def test_valid_stream_in_one_byte_writes_is_accepted(net):
    links = build(net, nx.path_graph(2))
    wait_converged(net, links)
    stream = encode_frame(Hello("raw", "", PROTOCOL_VERSION, 1)) + encode_frame(Adverts([]))
    with raw_client(net, "m1") as s:
        for i in range(len(stream)):
            s.send(stream[i : i + 1])
        # the whole stream taken in before closing: closing with m1's Hello and adverts unread
        # makes the kernel send a reset, which may overtake the last bytes of the stream
        assert net.run_until(
            lambda: any(
                e.kind == ev.ADVERT_IN and e.fields["peer"] == "raw" for e in net.tracer.events
            ),
            5,
        )
        assert "raw" in net.members["m1"].neighbours
    assert net.run_until(lambda: "raw" not in net.members["m1"].neighbours, 5)
    assert not [e for e in net.tracer.events if e.kind == ev.PROTOCOL_ERROR]


def test_handshake_that_never_finishes_times_out(net):
    build(net, nx.path_graph(2))
    with raw_client(net, "m1") as s:
        t0 = time.monotonic()
        reads_until_closed(s, timeout=FAST.handshake_timeout + 3)
        assert time.monotonic() - t0 < FAST.handshake_timeout + 2
    details = [e.fields["detail"] for e in net.tracer.events if e.kind == ev.PROTOCOL_ERROR]
    assert details == [f"no Hello within {FAST.handshake_timeout}s"]


def test_peer_that_never_reads_is_disconnected(net):
    links = build(net, nx.path_graph(3))
    wait_converged(net, links)
    with raw_client(net, "m1") as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        advert = encode_advert(Advert("sink", 1, 5, ("m1",), ""))
        hello = Hello("sink", "", PROTOCOL_VERSION, 1)
        s.sendall(encode_frame(hello) + encode_frame(Adverts([advert])))
        assert net.run_until(lambda: "sink" in net.members["m1"].routes, 5)

        def pump():  # far more than the write buffer limit, all at once
            for _ in range(100):
                net.members["m1"].send("sink", b"x" * 60_000)

        net.call(pump)
        assert net.run_until(lambda: "sink" not in net.members["m1"].neighbours, 10)
    reasons = [
        e.fields["reason"]
        for e in net.tracer.events
        if e.kind == ev.DISCONNECT and e.fields.get("peer") == "sink"
    ]
    assert any("not reading" in r for r in reasons), reasons
    wait_converged(net, links)


def test_link_latency_is_emulated_in_user_space(net):
    links = build(net, nx.path_graph(3))
    wait_converged(net, links)
    net.set_link("m0", "m1", LinkModel(latency=0.08, bandwidth=0))
    net.set_link("m1", "m2", LinkModel(latency=0.02, bandwidth=0))
    msg_id = net.call(lambda: net.members["m0"].send("m2", b"slow link"))
    assert net.run_until(
        lambda: any(
            e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id for e in net.tracer.events
        ),
        5,
    )
    sent = next(
        e.time for e in net.tracer.events if e.kind == ev.SEND and e.fields["msg_id"] == msg_id
    )
    got = next(
        e.time for e in net.tracer.events if e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id
    )
    # each hop's write may leave up to EARLY before its time (the selector wakes in whole ms)
    assert 0.10 - 2 * EARLY <= got - sent < 0.10 + 0.5


def test_a_fault_on_a_member_not_running_is_a_clear_error(net):
    net.add_member("a")
    net.crash("a")
    for fault in (net.crash, net.power_off, net.leave):
        with pytest.raises(UnknownMember, match=r"no running member 'a' \(running: none\)"):
            fault("a")
    with pytest.raises(UnknownMember, match="no running member 'zz'"):
        net.connect("zz", "a")


def test_a_paused_member_does_nothing_and_a_timer_cancelled_meanwhile_never_runs(net):
    links = build(net, nx.path_graph(2))
    wait_converged(net, links)
    t = net.transports["m0"]
    fired = []
    net.pause("m0")
    timers = net.call(
        lambda: [t.call_later(0.01, lambda n=n: fired.append(n)) for n in ("cancelled", "kept")]
    )
    assert net.run_until(lambda: len(t._backlog) == 2, 5)  # both fell due while paused: waiting
    assert fired == []
    net.call(timers[0].cancel)
    net.resume("m0")
    assert net.run_until(lambda: fired == ["kept"], 5)
    wait_converged(net, links)  # its link survived a pause shorter than the dead timeout


@pytest.mark.parametrize(
    "address, listening, problem",
    [
        ("127.0.0.1:99999", False, "port 99999 is not in 1..65535"),
        ("127.0.0.1:0", False, "port 0 is not in 1..65535"),
        ("127.0.0.1:65536", True, "port 65536 is not in 0..65535"),
        ("nowhere", False, "is not HOST:PORT"),
    ],
)
def test_an_address_out_of_range_is_refused_with_a_reason(address, listening, problem):
    from peerlab.realnet.transport import parse_address

    with pytest.raises(ValueError, match=problem):
        parse_address(address, listening=listening)
    assert parse_address("[::1]:0", listening=True) == ("::1", 0)


class Buffer(bytearray):
    """A bytearray that can be referred to weakly."""


class Recorder:
    """A connection handler that records what it is told and raises when told to."""

    def __init__(self, raise_on: bytes = b"") -> None:
        self.made: list[int] = []
        self.lost: dict[int, str] = {}
        self.raise_on = raise_on
        self.freed = None  # a weak reference to an object only the raising frame held

    def connection_made(self, conn, outbound, remote_address):
        self.made.append(conn)

    def data_received(self, conn, data):
        if self.raise_on and self.raise_on in data:
            held = Buffer(1 << 20)  # as a read buffer that a kept traceback would keep alive
            self.freed = weakref.ref(held)
            raise RuntimeError(f"cannot handle {data[:8]!r}")

    def connection_lost(self, conn, reason):
        self.lost[conn] = reason

    def connect_failed(self, address, reason):
        raise AssertionError(reason)


@pytest.fixture
def loop_logged(no_leaks, monkeypatch):
    """An event loop not yet running, and the lines ``peerlab.realnet`` logs meanwhile (kept
    as text, so that the log keeps no exception either)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    monkeypatch.setattr(loop_log, "propagate", False)
    loop_log.addHandler(handler)
    loop = EventLoop("test")
    yield loop, lines
    loop.stop()
    loop_log.removeHandler(handler)


def listening(loop: EventLoop, handler) -> tuple[TcpTransport, tuple[str, int]]:
    t = TcpTransport(loop)
    t.handler = handler
    t.start()
    host, port = t.listen_address.rsplit(":", 1)
    return t, (host, int(port))


def run_loop_until(loop: EventLoop, predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        loop.run_once(0.01)
    return True


def test_a_raising_callback_costs_its_connection_only_and_the_loop_keeps_nothing(loop_logged):
    loop, lines = loop_logged
    handler = Recorder(raise_on=b"poison")
    t, address = listening(loop, handler)
    with socket.create_connection(address) as good, socket.create_connection(address) as bad:
        assert run_loop_until(loop, lambda: len(handler.made) == 2)
        bad.sendall(b"poison")
        assert run_loop_until(loop, lambda: handler.lost)
        assert reads_until_closed(bad) == b""  # closed on the culprit
        good.sendall(b"fine")
        assert not run_loop_until(loop, lambda: len(handler.lost) > 1, timeout=0.2)
        assert list(t.conns) == [handler.made[0]]  # the other connection is still open
    (reason,) = handler.lost.values()
    assert reason == "internal error: RuntimeError: cannot handle b'poison'"
    assert loop.failures == 1
    assert len(lines) == 1 and "connection with 127.0.0.1:" in lines[0], lines
    assert handler.freed() is None  # no traceback keeps the raising frame's buffer
    t.shutdown()


def test_a_timer_that_raises_is_logged_and_counted_and_the_loop_goes_on(loop_logged):
    loop, lines = loop_logged
    ran = []
    loop.call_later(0, lambda: 1 / 0)
    loop.call_later(0, lambda: ran.append(True))
    assert run_loop_until(loop, lambda: ran)
    assert loop.failures == 1
    assert lines == ["test: callback failed: ZeroDivisionError: division by zero"]


def test_connections_reset_before_they_are_accepted_are_closed_and_accepting_goes_on(
    loop_logged,
):
    loop, lines = loop_logged
    handler = Recorder()
    t, address = listening(loop, handler)
    for _ in range(20):  # reset while waiting in the backlog: getpeername fails on accepting
        s = socket.create_connection(address)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with socket.create_connection(address):
        assert run_loop_until(loop, lambda: handler.made)
        assert len(handler.made) == 1 and len(t.conns) == 1
    assert loop.failures == 0 and lines == []
    t.shutdown()
