"""Secure mode (issue 18): only members of the network join, and nobody speaks for another.

The attacks come from raw sockets on loopback, as an attacker would write them, against a live
line a-b-c-d in secure mode; each must cost only the attacker's connection while d's messages
to a keep arriving.
"""

import itertools
import os
import socket
import time

import msgspec
import pytest
from waiting import closed_by_peer, eventually, messages_arrive

from peerlab import trace as ev
from peerlab.cli import main
from peerlab.identity import Authority, KeyDir, KeyFileError, MemberKeys
from peerlab.member import BAD_SIGNATURE
from peerlab.realnet.network import TcpNetwork
from peerlab.realnet.transport import parse_address
from peerlab.secure import Security
from peerlab.sim.network import SimNetwork
from peerlab.wire import (
    MAX_INCARNATION,
    MAX_SEQ,
    PROTOCOL_VERSION,
    Advert,
    Adverts,
    Data,
    FrameDecoder,
    Hello,
    Proof,
    encode_advert,
    encode_frame,
)

LINE = "abcd"
_sources = itertools.count(1)


@pytest.fixture(scope="module")
def net():
    net = TcpNetwork(7, security="signed")
    try:
        now = int(time.time())
        net.credentials.trust.load_revocations(net.credentials.authority.revocations(["eve"], now))
        net.add_member("a")
        for prev, name in itertools.pairwise(LINE):
            net.add_member(name, join=[prev])
        eventually(
            lambda: net.call(lambda: all(len(m.routes) == 3 for m in members(net))), "routes"
        )
        yield net
    finally:
        net.close()


def members(net):
    return list(net.members.values())


class Intruder:
    """A raw TCP client from its own loopback address: frames out, frames in, bounded waits."""

    def __init__(self, address: str) -> None:
        self.source = f"127.77.0.{next(_sources)}"
        self.sock = socket.create_connection(
            parse_address(address), timeout=5, source_address=(self.source, 0)
        )
        self.decoder = FrameDecoder()
        self.inbox: list = []

    def send(self, *messages) -> None:
        self.sock.sendall(b"".join(encode_frame(m) for m in messages))

    def receive(self, kind: type):
        """The next message of type ``kind`` (others are skipped), within five seconds."""
        deadline = time.monotonic() + 5
        while True:
            for i, message in enumerate(self.inbox):
                if type(message) is kind:
                    del self.inbox[: i + 1]
                    return message
            self.inbox.clear()
            assert time.monotonic() < deadline, f"no {kind.__name__} within 5s"
            data = self.sock.recv(1 << 16)
            assert data, f"closed before a {kind.__name__}"
            self.inbox.extend(self.decoder.feed(data))

    def is_closed(self) -> bool:
        """Whether the member closes the connection within five seconds."""
        return closed_by_peer(self.sock)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def intruder(net):
    opened: list[Intruder] = []

    def at(member: str) -> Intruder:
        opened.append(Intruder(net.address_of(member)))
        return opened[-1]

    yield at
    for x in opened:
        x.close()


def hello(member_id: str, certificate: bytes | None, nonce: bytes | None = None) -> Hello:
    nonce = nonce if nonce is not None else os.urandom(16)
    return Hello(member_id, "127.0.0.1:9", PROTOCOL_VERSION, 1, certificate, nonce)


def join_as(x: Intruder, identity) -> tuple[Hello, Proof]:
    """Complete a genuine handshake as ``identity`` (dialling); returns the member's Hello and
    Proof."""
    theirs = x.receive(Hello)
    ours = hello(identity.member_id, identity.certificate)
    x.send(ours)
    proof = x.receive(Proof)
    x.send(Proof(Security(identity).prove(ours, theirs, b"D")))
    return theirs, proof


def still_flows(net) -> None:
    """d's messages reach a, over the line, and b still holds the real a as a neighbour."""
    messages_arrive(net, "d", "a")
    assert "a" in net.call(lambda: net.members["b"].neighbours)


def blamed(net, x: Intruder) -> bool:
    return net.call(lambda: net.members["b"].standing()).get(x.source, {}).get("score", 0) > 0


def _uncertified(net) -> Hello:
    return hello("mallory", None)


def _other_network(net) -> Hello:
    elsewhere = Authority.generate(b"another network")
    cert = elsewhere.issue("mallory", MemberKeys.generate(b"m"), 2**40)
    return hello("mallory", msgspec.msgpack.encode(cert))


def _expired(net) -> Hello:
    cert = net.credentials.authority.issue("mallory", MemberKeys.generate(b"m"), 1_000_000)
    return hello("mallory", msgspec.msgpack.encode(cert))


def _revoked(net) -> Hello:
    return hello("eve", net.credentials.identity("eve").certificate)


@pytest.mark.parametrize(
    "make_hello",
    [_uncertified, _other_network, _expired, _revoked],
    ids=["uncertified", "another-network", "expired", "revoked"],
)
def test_a_hello_the_network_does_not_vouch_for_is_refused(net, intruder, make_hello):
    x = intruder("b")
    x.receive(Hello)
    x.send(make_hello(net))
    assert x.is_closed()
    assert blamed(net, x)
    still_flows(net)


def test_a_certificate_without_its_key_does_not_make_a_member(net, intruder):
    connection_to_a = net.call(lambda: net.members["b"]._peers["a"])
    x = intruder("b")
    x.receive(Hello)
    x.send(hello("a", net.credentials.identity("a").certificate))  # a's, public in its adverts
    x.receive(Proof)
    x.send(Proof(os.urandom(64)))  # without a's key, it cannot sign the transcript
    assert x.is_closed()
    assert blamed(net, x)
    assert net.call(lambda: net.members["b"]._peers["a"]) is connection_to_a
    still_flows(net)


def test_a_replayed_handshake_proves_nothing(net, intruder):
    # a certified outsider meets a, and keeps a's Hello and a's signature over that handshake
    grab = intruder("a")
    a_hello, a_proof = join_as(grab, net.credentials.identity("x"))
    grab.close()
    x = intruder("b")
    x.receive(Hello)
    x.send(a_hello, a_proof)  # b's Hello had a fresh nonce: a's old signature is not over it
    assert x.is_closed()
    assert blamed(net, x)
    still_flows(net)


def _unsigned(net, forged: Advert) -> Advert:
    return forged


def _under_cs_certificate(net, forged: Advert) -> Advert:
    x = Security(net.credentials.identity("x"))
    signed = x.sign_advert(forged)  # x's signature...
    return msgspec.structs.replace(signed, certificate=net.credentials.identity("c").certificate)


def _under_own_certificate(net, forged: Advert) -> Advert:
    return Security(net.credentials.identity("x")).sign_advert(forged)


@pytest.mark.parametrize("seq", [2, MAX_SEQ])
@pytest.mark.parametrize(
    "sign",
    [_unsigned, _under_cs_certificate, _under_own_certificate],
    ids=["unsigned", "x-signing-with-c-certificate", "x-signing-as-itself"],
)
def test_a_forged_advert_is_refused_and_costs_its_sender_the_connection(net, intruder, sign, seq):
    x = intruder("b")
    join_as(x, net.credentials.identity("x"))
    forged = Advert("c", MAX_INCARNATION - 1, seq, (), net.address_of("c"))
    x.send(Adverts([msgspec.Raw(encode_advert(sign(net, forged)))]))
    assert x.is_closed()
    assert blamed(net, x)
    assert net.call(lambda: net.members["b"].routes["d"].next_hop) == "c"
    still_flows(net)


@pytest.mark.parametrize("mac", [None, bytes(16)], ids=["no-code", "made-up-code"])
def test_data_with_a_forged_source_is_dropped_by_its_destination(net, intruder, mac):
    x = intruder("b")
    join_as(x, net.credentials.identity("x"))
    msg_id = f"a:1:{next(_sources)}"
    x.send(Data(msg_id, "a", "d", 16, ["a"], b"from a, believe me", None, mac))
    eventually(
        lambda: any(e.fields["msg_id"] == msg_id for e in net.tracer.of_kind(ev.DROP)),
        "the forged message's drop",
    )
    (drop,) = [e for e in net.tracer.of_kind(ev.DROP) if e.fields["msg_id"] == msg_id]
    assert drop.member == "d" and drop.fields["reason"] == BAD_SIGNATURE
    assert not [e for e in net.tracer.of_kind(ev.DELIVER) if e.fields["msg_id"] == msg_id]
    still_flows(net)


# --- the simulation runs the same secure mode ----------------------------------------------


def test_secure_mode_in_simulation_repeats_and_authenticates_reliable_delivery():
    def run() -> list:
        sim = SimNetwork(3, security="signed")
        sim.add_member("a")
        for prev, name in itertools.pairwise(LINE):
            sim.add_member(name, join=[prev])
        sim.run(2)
        for i in range(5):
            sim.members["d"].send("a", b"%d" % i, reliable=True)
        sim.run(2)
        return [(e.time, e.member, e.kind, sorted(e.fields.items())) for e in sim.tracer.events]

    first = run()
    assert first == run()
    assert sum(1 for e in first if e[2] == ev.ACKED) == 5
    assert not [e for e in first if e[2] in (ev.DROP, ev.PROTOCOL_ERROR)]


# --- key files -------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    folder = KeyDir(tmp_path / "keys")
    folder.init_network()
    folder.issue("a", int(time.time()) + 3600)
    return folder


def test_keys_made_by_the_commands_give_an_identity_peers_accept(tmp_path, capsys):
    folder = tmp_path / "k"
    assert main(["keys", "init-network", str(folder)]) == 0
    assert main(["keys", "issue", str(folder), "--id", "a", "--expires", "30d"]) == 0
    assert main(["keys", "issue", str(folder), "--id", "b"]) == 0
    assert main(["keys", "revoke", str(folder), "--id", "b"]) == 0
    for name in ("network.key", "a.key", "b.key"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    identity = KeyDir(folder).identity("a", time.time)
    assert identity.trust.revoked == {"b"}
    expires = identity.trust.check(identity.certificate, "a").expires
    assert abs(expires - (time.time() + 30 * 86400)) < 60
    with pytest.raises(KeyFileError, match="revoked"):
        KeyDir(folder).identity("b", time.time)


def test_a_private_key_others_may_read_is_refused(keys, capsys):
    (keys.path / "a.key").chmod(0o644)
    with pytest.raises(KeyFileError, match=r"a\.key may be read by others .*chmod 600"):
        keys.identity("a", time.time)
    status = main(["member", "--id", "a", "--listen", "127.0.0.1:0", "--keys", str(keys.path)])
    assert status == 2
    assert "may be read by others (mode 0644)" in capsys.readouterr().err


def test_a_tampered_certificate_is_rejected(keys):
    path = keys.path / "a.cert"
    cert = bytearray(path.read_bytes())
    cert[-70] ^= 1  # inside the expiry or the keys: the signature no longer matches
    path.write_bytes(bytes(cert))
    with pytest.raises(KeyFileError, match=r"not signed by this network|not for the keys"):
        keys.identity("a", time.time)
    path.write_bytes(b"\x93garbage")
    with pytest.raises(KeyFileError, match="undecodable certificate"):
        keys.identity("a", time.time)


def test_a_certificate_of_other_keys_or_another_id_is_rejected(keys):
    keys.issue("b", int(time.time()) + 3600)
    (keys.path / "a.cert").write_bytes((keys.path / "b.cert").read_bytes())
    with pytest.raises(KeyFileError, match="certificate of 'b' presented as 'a'"):
        keys.identity("a", time.time)


def test_an_existing_key_is_never_overwritten(keys):
    with pytest.raises(KeyFileError, match="exists already"):
        keys.issue("a", int(time.time()) + 3600)
    with pytest.raises(KeyFileError, match="exists already"):
        keys.init_network()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "issue", "{dir}", "--id", "a", "--expires", "soon"], "--expires: expected"),
        (["keys", "issue", "{dir}", "--id", "a", "--expires", "0"], "--expires: expected"),
        (["keys", "issue", "{dir}", "--id", ""], "--id: a member id must not be empty"),
        (["keys", "issue", "{dir}/nowhere", "--id", "c"], "network.key"),
    ],
)
def test_bad_key_commands_say_what_is_wrong(keys, capsys, argv, message):
    assert main([a.format(dir=keys.path) for a in argv]) == 2
    assert message in capsys.readouterr().err
