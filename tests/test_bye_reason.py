"""A member closing a connection for a protocol error first says Bye, naming the error
(docs/protocol.md, section 11): in memory, in the simulator, and on a real socket against a live
`peerlab member` process."""

import contextlib
import socket
import threading

import msgspec
import pytest
from memnet import MemoryNetwork, RawPeer, raw_peer
from peerproc import LiveMember
from waiting import eventually

from peerlab import trace as ev
from peerlab.sim.network import SimNetwork
from peerlab.sim.transport import SimTransport
from peerlab.wire import (
    HEADER,
    PROTOCOL_VERSION,
    Bye,
    Data,
    FrameDecoder,
    Hello,
    Ping,
    Pong,
    encode_frame,
)

MAP_BODY = msgspec.msgpack.encode({"type": "ping"})
CASES = [
    (
        encode_frame(Data("x", "a", "b", 3, ["a"], b"")),
        "protocol error: received data before Hello",
    ),
    (encode_frame(Hello("zz", "", 99)), "protocol error: protocol version 99 not supported"),
    (HEADER.pack(1 << 31), "protocol error: frame length 2147483648 exceeds"),
    (
        HEADER.pack(len(MAP_BODY)) + MAP_BODY,
        f"protocol error: undecodable frame body ({len(MAP_BODY)} bytes): Expected `array`, "
        "got `object`",
    ),
]


def said(data: bytes) -> list:
    return FrameDecoder().feed(data)


@pytest.mark.parametrize("payload, reason", CASES, ids=["data", "version", "size", "map"])
def test_in_memory_a_protocol_error_is_preceded_by_a_bye_naming_it(payload, reason):
    net = MemoryNetwork(1)
    net.add("b")
    t, raw = raw_peer(net, "raw", "b")
    t.send(raw.conns[0], payload)
    assert net.run_until(lambda: raw.lost, timeout=1)
    hello, bye = said(raw.data)
    assert isinstance(hello, Hello) and hello.member_id == "b"
    assert isinstance(bye, Bye) and bye.reason.startswith(reason)
    [closed] = [e for e in net.tracer.of_kind(ev.DISCONNECT) if e.member == "b"]
    assert closed.fields["reason"] == bye.reason


def test_in_memory_a_silent_connection_hears_why_it_is_closed():
    net = MemoryNetwork(1)
    net.add("b")
    _, raw = raw_peer(net, "raw", "b")
    assert net.run_until(lambda: raw.lost, timeout=net.config.handshake_timeout + 1)
    assert said(raw.data)[1] == Bye(
        f"protocol error: no Hello within {net.config.handshake_timeout}s"
    )


def test_a_bye_before_the_handshake_closes_without_a_protocol_error():
    net = MemoryNetwork(1)
    net.add("b")
    t, raw = raw_peer(net, "raw", "b")
    t.send(raw.conns[0], encode_frame(Bye("protocol error: not your version")))
    assert net.run_until(lambda: raw.lost, timeout=1)
    assert [type(m) for m in said(raw.data)] == [Hello]  # no Bye answers a Bye
    assert not net.tracer.of_kind(ev.PROTOCOL_ERROR)
    [closed] = net.tracer.of_kind(ev.DISCONNECT)
    assert closed.fields["reason"] == "peer left: protocol error: not your version"


def test_in_the_simulator_a_protocol_error_is_preceded_by_a_bye_naming_it():
    net = SimNetwork(3)
    net.add_member("b")
    raw = RawPeer()
    t = SimTransport(net, "raw", "sim:raw")
    t.handler = raw
    t.connect(net.address_of("b"))
    assert net.run_until(lambda: bool(raw.conns), timeout=5)
    t.send(raw.conns[0], encode_frame(Data("x", "a", "b", 3, ["a"], b"")))
    assert net.run_until(lambda: bool(raw.lost), timeout=5)
    assert said(raw.data)[1] == Bye("protocol error: received data before Hello")


def recv_all(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (the socket's timeout bounds each read)."""
    data = b""
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the peer kept sending")


@pytest.fixture
def live():
    member = LiveMember("b")
    yield member
    member.close()


def test_a_live_member_says_why_before_it_closes_a_raw_socket(live):
    live.wait_for("listening on")
    host, port = live.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_frame(Hello("raw", "", PROTOCOL_VERSION + 1, 1)))
        hello, bye = said(recv_all(sock))
    assert hello.member_id == "b" and hello.protocol_version == PROTOCOL_VERSION
    assert bye == Bye(
        f"protocol error: protocol version {PROTOCOL_VERSION + 1} not supported "
        f"(this member speaks {PROTOCOL_VERSION})"
    )
    # the member goes on: a well-behaved newcomer is answered
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_frame(Hello("ok", "", PROTOCOL_VERSION, 1)) + encode_frame(Ping(7)))
        decoder, seen = FrameDecoder(), []

        def answered() -> bool:
            seen.extend(decoder.feed(sock.recv(65536)))
            return Pong(7) in seen

        eventually(answered, "a pong to the newcomer's ping")


class Refuser:
    """A listening raw socket that says Hello to whoever dials, then Bye naming a protocol
    error, and closes; it counts the dials."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.dials = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.dials += 1
            with conn, contextlib.suppress(OSError):  # a dialler gone: the next dial
                conn.settimeout(5)
                conn.sendall(encode_frame(Hello("refuser", self.address, PROTOCOL_VERSION, 1)))
                conn.recv(4096)  # the dialler's Hello
                conn.sendall(encode_frame(Bye("protocol error: refused for a test")))

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        self.sock.close()


def test_a_live_member_dials_again_an_address_that_refused_it_with_a_reason():
    refuser = Refuser()
    try:
        a = LiveMember("a", [refuser.address])
        try:
            a.wait_for("reason=peer left: protocol error: refused for a test")
            # a refusal is not a goodbye: the address stays dialled
            eventually(lambda: refuser.dials >= 2, "a second dial of the refusing address")
        finally:
            a.close()
    finally:
        refuser.close()
