"""TLS on real links (issue 18, item 3): a secure line a-b-c-d whose every link is TLS 1.3 with
certificates from the network key; peers that cannot speak it for this network cost only their
own connection."""

import dataclasses
import itertools
import socket
import ssl
import time

import pytest
from waiting import closed_by_peer, eventually, messages_arrive

from peerlab.cli import main
from peerlab.identity import KeyDir, KeyFileError
from peerlab.realnet.network import TcpNetwork
from peerlab.realnet.transport import parse_address
from peerlab.runner import run
from peerlab.scenario import load_scenario
from peerlab.wire import PROTOCOL_VERSION, Hello, encode_frame

LINE = "abcd"
_sources = itertools.count(1)


@pytest.fixture(scope="module")
def net():
    net = TcpNetwork(11, security="signed", tls=True)
    try:
        net.add_member("a")
        for prev, name in itertools.pairwise(LINE):
            net.add_member(name, join=[prev])
        eventually(
            lambda: net.call(lambda: all(len(m.routes) == 3 for m in net.members.values())),
            "routes",
        )
        yield net
    finally:
        net.close()


def still_flows(net) -> None:
    """d's messages reach a over the line, and b still has both its neighbours."""
    messages_arrive(net, "d", "a")
    assert net.call(lambda: sorted(net.members["b"].neighbours)) == ["a", "c"]


def attacker(net, member: str) -> socket.socket:
    """A raw TCP connection to ``member`` from an address of its own."""
    source = f"127.78.0.{next(_sources)}"
    return socket.create_connection(
        parse_address(net.address_of(member)), timeout=5, source_address=(source, 0)
    )


def refused_in_tls(context: ssl.SSLContext, sock: socket.socket) -> str:
    """The TLS alert the member answers a handshake from ``context`` with (within five
    seconds); under TLS 1.3 a client's certificate is judged after the client's handshake
    ended, so the alert comes with the first read."""
    try:
        tls = context.wrap_socket(sock)
        tls.recv(1 << 16)
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    raise AssertionError("the member took the handshake")


def attacking_context(keys: KeyDir | None) -> ssl.SSLContext:
    """A client context that does not care who the member is, presenting member a's
    certificate of the network in ``keys`` (none without)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if keys is not None:
        context.load_cert_chain(keys.path / "a.pem", keys.path / "a.key")
    return context


def test_every_link_of_a_tls_line_is_tls13_with_the_neighbours_certificate(net):
    def links():
        return [
            (name, c.tls.version(), c.tls.peer_name())
            for name, t in net.transports.items()
            for c in t.conns.values()
        ]

    seen = net.call(links)
    assert len(seen) == 6
    assert {version for _, version, _ in seen} == {"TLSv1.3"}
    assert sorted((name, peer) for name, _, peer in seen) == [
        ("a", "b"),
        ("b", "a"),
        ("b", "c"),
        ("c", "b"),
        ("c", "d"),
        ("d", "c"),
    ]
    still_flows(net)


def test_a_plaintext_hello_costs_only_its_connection(net):
    with attacker(net, "b") as sock:
        hello = Hello("a", "127.0.0.1:9", PROTOCOL_VERSION, 1, None, None)
        sock.sendall(encode_frame(hello))
        assert closed_by_peer(sock)
    still_flows(net)


def test_a_certificate_of_another_network_is_refused(net, tmp_path):
    other = KeyDir(tmp_path)
    other.init_network()
    other.issue("a", int(time.time()) + 3600)
    with attacker(net, "b") as raw:
        assert "UNKNOWN_CA" in refused_in_tls(attacking_context(other), raw)
    still_flows(net)


def test_a_tls_client_without_a_certificate_is_refused(net):
    with attacker(net, "c") as raw:
        assert "CERTIFICATE_REQUIRED" in refused_in_tls(attacking_context(None), raw)
    still_flows(net)


def test_tls_needs_secure_mode(tmp_path, capsys):
    with pytest.raises(ValueError, match="TLS needs secure mode"):
        TcpNetwork(1, security="open", tls=True)
    path = tmp_path / "open-tls.yaml"
    path.write_text(
        "topology: {links: [[a, b]]}\nsecurity:\n  mode: open\n  tls: true\n", encoding="utf-8"
    )
    assert main(["-q", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: security.tls: needs mode: signed" in err


def test_the_simulation_says_tls_is_real_only():
    scenario = dataclasses.replace(load_scenario("quickstart"), security="signed", tls=True)
    result = run(scenario, "sim")
    assert result.ok
    assert result.warnings == ["security.tls: TLS is real-only; the simulation ran without it"]


def test_key_folders_hold_tls_certificates_and_say_when_they_do_not(tmp_path):
    keys = KeyDir(tmp_path)
    keys.init_network()
    keys.issue("a", int(time.time()) + 3600)
    contexts = keys.tls("a")
    assert contexts.server.minimum_version == ssl.TLSVersion.TLSv1_3
    assert contexts.client.verify_mode == ssl.CERT_REQUIRED
    (tmp_path / "a.pem").unlink()
    with pytest.raises(KeyFileError, match=r"a\.pem: no TLS certificate here"):
        keys.tls("a")
    assert main(["-q", "member", "--id", "a", "--listen", "127.0.0.1:0", "--tls"]) == 2
