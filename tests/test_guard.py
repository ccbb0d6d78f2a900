"""What a member holds remote peers to: limits, eviction, misbehaviour, budgets (issue 17).

Each test attacks one member of a small in-memory network from raw peers and checks that the
attack costs only the attacker's connections and standing, and that the member goes on.
"""

import itertools
import struct

import msgspec
import pytest
from memnet import MemoryNetwork, raw_peer

from peerlab import trace as ev
from peerlab.guard import Standing, host_of
from peerlab.linkstate import AdvertCache
from peerlab.member import MemberConfig
from peerlab.wire import PROTOCOL_VERSION, Advert, Adverts, Hello, encode_advert, encode_frame

SETTLE = 4.0


def network(config: MemberConfig, names: str = "abc", cache=None) -> MemoryNetwork:
    net = MemoryNetwork(3, config=config)
    for x in names:
        net.add(x)
    for u, v in itertools.pairwise(names):
        net.link(u, v)
    net.run_for(SETTLE)
    return net


def hello(name: str) -> bytes:
    return encode_frame(Hello(name, f"mem:{name}", PROTOCOL_VERSION, 1))


def reasons(net: MemoryNetwork, member: str = "b") -> list[str]:
    return [e.fields["reason"] for e in net.tracer.of_kind(ev.DISCONNECT) if e.member == member]


def still_relays(net: MemoryNetwork) -> bool:
    msg_id = net.members["a"].send("c", b"through b")
    net.run_for(0.5)
    return any(e.fields["msg_id"] == msg_id for e in net.tracer.of_kind(ev.DELIVER))


def test_a_stranger_cannot_make_a_member_buffer_a_big_frame_before_its_hello():
    net = network(MemberConfig(handshake_frame_size=1024))
    t, peer = raw_peer(net, "z", "b")
    t.send(peer.conns[0], struct.pack(">I", 1 << 20) + b"x" * 1000)  # a megabyte announced
    assert net.run_until(lambda: peer.lost, timeout=1)
    (error,) = net.tracer.of_kind(ev.PROTOCOL_ERROR)
    assert error.fields["error"] == "FrameTooLarge" and "1024" in error.fields["detail"]
    assert still_relays(net)


def test_a_hello_and_a_big_database_in_one_read_are_both_taken():
    net = network(MemberConfig(handshake_frame_size=1024))
    t, peer = raw_peer(net, "z", "b")
    many = [encode_advert(Advert(f"m{i:04}", 1, 1, ("z",), "")) for i in range(100)]
    t.send(peer.conns[0], hello("z") + encode_frame(Adverts(many)))  # ~2 KiB after the Hello
    net.run_for(0.5)
    assert not net.tracer.of_kind(ev.PROTOCOL_ERROR)
    assert "m0099" in net.members["b"].db and "z" in net.members["b"].neighbours


def test_handshakes_from_one_address_are_capped_the_oldest_evicted():
    net = network(MemberConfig(max_pending_per_address=3))
    peers = [raw_peer(net, "crowd", "b", listening=False)[1] for _ in range(5)]
    net.run_for(0.1)
    assert [bool(p.lost) for p in peers] == [True, True, False, False, False]
    assert reasons(net).count("evicted: mem:crowd has too many handshakes under way") == 2
    assert net.members["b"].standing()["mem:crowd"]["pending"] == 3
    assert still_relays(net)


def test_a_frame_dripped_in_slower_than_the_minimum_rate_is_cut_off_and_blamed():
    config = MemberConfig(min_frame_rate=100.0, frame_grace=1.0, keepalive_interval=0.5)
    net = network(config)
    t, peer = raw_peer(net, "drip", "b")
    conn = peer.conns[0]
    t.send(conn, hello("drip") + struct.pack(">I", 5000))
    for _ in range(8):  # a byte every half second, keeping the connection alive
        net.run_for(0.5)
        if peer.lost:
            break
        t.send(conn, b"x")
    assert peer.lost
    (error,) = [e for e in net.tracer.of_kind(ev.PROTOCOL_ERROR) if e.member == "b"]
    assert error.fields["error"] == "TooSlow" and "bytes/s" in error.fields["detail"]
    assert net.members["b"].standing()["mem:drip"]["score"] > 0
    assert still_relays(net)


def test_repeated_misbehaviour_gets_an_address_refused_for_a_while():
    config = MemberConfig(discourage_score=100.0, discourage_time=60.0)
    net = network(config)
    for _ in range(4):  # four malformed frames: 25 points each
        t, peer = raw_peer(net, "rude", "b", listening=False)
        t.send(peer.conns[0], b"\x00\x00\x00\x03abc")
        assert net.run_until(lambda peer=peer: peer.lost, timeout=1)
    (last,) = [e for e in net.tracer.of_kind(ev.MISBEHAVED) if e.fields["discouraged"]]
    assert last.fields["address"] == "mem:rude"
    t, peer = raw_peer(net, "rude", "b", listening=False)
    net.run_for(0.1)
    assert peer.lost and reasons(net)[-1] == "mem:rude is discouraged (misbehaviour)"
    assert net.members["b"].standing()["mem:rude"]["refused_for"] > 50
    assert still_relays(net)
    net.run_for(config.discourage_time + 1)  # refused for a while, not for ever
    t, peer = raw_peer(net, "rude", "b", listening=False)
    t.send(peer.conns[0], hello("rude"))
    net.run_for(0.2)
    assert not peer.lost and "rude" in net.members["b"].neighbours


def test_a_full_member_evicts_the_newest_of_the_most_crowded_address_for_a_newcomer():
    config = MemberConfig(max_connections=8, max_pending_per_address=8)
    net = network(config)  # b holds a and c, both protected as the oldest
    crowd = []
    for i in range(6):
        t, peer = raw_peer(net, "crowd", "b", listening=False)
        t.send(peer.conns[0], hello(f"crowd{i}"))
        net.run_for(0.05)
        crowd.append(peer)
    assert len(net.members["b"].neighbours) == 8
    t, newcomer = raw_peer(net, "new", "b")
    t.send(newcomer.conns[0], hello("new"))
    net.run_for(0.1)
    assert "new" in net.members["b"].neighbours and not newcomer.lost
    assert [bool(p.lost) for p in crowd] == [False] * 5 + [True]  # the newest of the crowd
    assert {"a", "c"} <= set(net.members["b"].neighbours)
    assert still_relays(net)


def test_the_peer_holding_most_unfinished_bytes_goes_when_the_budget_runs_out():
    net = network(MemberConfig(max_buffered=10_000))
    small_t, small = raw_peer(net, "small", "b")
    big_t, big = raw_peer(net, "big", "b")
    small_t.send(small.conns[0], hello("small") + struct.pack(">I", 9000) + b"x" * 3000)
    big_t.send(big.conns[0], hello("big") + struct.pack(">I", 90_000) + b"x" * 8000)
    net.run_for(0.1)
    assert big.lost and not small.lost
    assert any("unfinished frame" in r for r in reasons(net))
    assert net.members["b"].standing()["mem:big"]["score"] > 0


def test_invented_members_past_a_peer_s_quota_are_refused_and_the_rest_still_join():
    net = network(MemberConfig(max_origins_per_peer=50))
    t, peer = raw_peer(net, "liar", "b")
    # 90 new names: within the liar's name budget (twice its quota of origins)
    invented = [encode_advert(Advert(f"ghost{i}", 1, 1, ("liar",), "")) for i in range(90)]
    t.send(peer.conns[0], hello("liar") + encode_frame(Adverts(invented)))
    net.run_for(1.0)
    b = net.members["b"]
    assert sum(1 for m in b.db if m.startswith("ghost")) == 50
    assert net.tracer.of_kind(ev.ADVERT_REJECTED)
    net.add("d")
    net.link("d", "c")
    net.run_for(SETTLE)
    assert "d" in b.routes  # a newcomer introduced by an honest peer is taken


def test_naming_more_new_ids_than_a_peer_s_budget_costs_its_connection_and_standing():
    net = network(MemberConfig(max_origins_per_peer=50))
    t, peer = raw_peer(net, "liar", "b")
    b = net.members["b"]
    known = len(b.db.cache.index)
    # one origin the liar may introduce, naming 500 members nobody else ever heard of
    invented = encode_advert(Advert("ghost", 1, 1, tuple(f"g{i}" for i in range(500)), ""))
    t.send(peer.conns[0], hello("liar") + encode_frame(Adverts([invented])))
    net.run_for(1.0)
    assert peer.lost
    assert any("named 501 new member ids" in r for r in reasons(net))
    assert len(b.db.cache.index) == known + 1  # the liar's own id; none of the advert's
    assert b.standing()["mem:liar"]["score"] > 0
    assert still_relays(net)


def test_a_flood_of_invented_names_does_not_lock_newcomers_out_of_the_index():
    config = MemberConfig(max_origins_per_peer=10)
    net = MemoryNetwork(3, config=config)
    cache = AdvertCache(max_members=200)
    b = net.add("b", cache=cache)  # an index of 200 names, for b alone
    for x in "ac":
        net.add(x)
    t, peer = raw_peer(net, "flood", "b")
    junk = [
        encode_advert(Advert(f"x{i}", 1, 1, tuple(f"y{i}-{j}" for j in range(20)), ""))
        for i in range(30)
    ]
    t.send(peer.conns[0], hello("flood"))
    for i in range(0, 30, 3):
        t.send(peer.conns[0], encode_frame(Adverts(junk[i : i + 3])))
        net.run_for(0.05)
    net.link("a", "b")
    net.link("c", "b")
    net.run_for(SETTLE)
    assert {"a", "c"} <= set(b.routes)


def test_an_advert_s_address_is_dialled_on_its_word_only_once_if_another_member_answers():
    net = network(MemberConfig(target_degree=2), names="ab")
    victim = net.add("victim")
    t, peer = raw_peer(net, "liar", "a")
    lie = encode_advert(Advert("ghost", 1, 1, ("liar",), victim.transport.listen_address))
    t.send(peer.conns[0], hello("liar") + encode_frame(Adverts([lie])))
    net.run_for(10.0)
    refused = [e for e in net.tracer.of_kind(ev.DIAL_REFUSED) if e.member == "a"]
    assert len(refused) == 1 and refused[0].fields["expected"] == "ghost"
    dialled_by = [e.fields["peer"] for e in net.tracer.of_kind(ev.CONNECT) if e.member == "victim"]
    assert len(dialled_by) == len(set(dialled_by))  # each member that heard the lie: once


def test_an_advert_s_address_where_nobody_answers_is_not_dialled_again_on_its_word_soon():
    net = network(MemberConfig(target_degree=2), names="ab")
    t, peer = raw_peer(net, "liar", "a")
    lie = encode_advert(Advert("ghost", 1, 1, ("liar",), "mem:nobody"))
    t.send(peer.conns[0], hello("liar") + encode_frame(Adverts([lie])))
    net.run_for(30.0)
    failed = [e.member for e in net.tracer.of_kind(ev.CONNECT_FAILED)]
    assert failed.count("a") == 1 and failed.count("b") <= 1


def test_a_hello_announcing_someone_else_s_address_does_not_stand_for_that_member():
    net = network(MemberConfig(), names="ab")
    b_address = net.members["b"].transport.listen_address
    assert b_address in net.members["a"].peer_addresses()  # a dialled b: that counts
    t, peer = raw_peer(net, "mimic", "a")
    t.send(peer.conns[0], encode_frame(Hello("mimic", "mem:c", PROTOCOL_VERSION, 1)))
    net.run_for(0.2)
    assert "mimic" in net.members["a"].neighbours
    assert "mem:c" not in net.members["a"].peer_addresses()


def test_scores_decay_and_hosts_are_read_off_addresses():
    standing = Standing(threshold=100, half_life=10.0, ban=30.0)
    assert not standing.blame("x", 60, now=0.0)
    assert standing.score("x", now=10.0) == pytest.approx(30.0)
    assert standing.blame("x", 80, now=10.0) and standing.discouraged("x", now=20.0)
    assert not standing.discouraged("x", now=41.0)
    assert [host_of(a) for a in ("127.0.0.5:9000", "[::1]:80", "sim:b", "mem:x")] == [
        "127.0.0.5",
        "::1",
        "sim:b",
        "mem:x",
    ]


def test_the_limits_make_no_noise_in_an_honest_network():
    net = network(MemberConfig(), names="abcdef")
    assert not net.tracer.of_kind(ev.MISBEHAVED) and not net.tracer.of_kind(ev.ADVERT_REJECTED)
    assert msgspec.json.encode(net.members["c"].standing())  # plain data
