import itertools

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memnet import MemoryNetwork, RawPeer

from peerlab import member as member_module
from peerlab import trace as ev
from peerlab.errors import ConfigError, LocalProtocolError
from peerlab.member import MemberConfig
from peerlab.oracle import table_errors
from peerlab.routing import next_hops
from peerlab.wire import (
    PROTOCOL_VERSION,
    Advert,
    Adverts,
    Batch,
    Bye,
    Data,
    FrameDecoder,
    Hello,
    decode_advert,
    encode_advert,
    encode_frame,
)

SETTLE = 8.0


def build(n: int, edges, seed: int = 0, **kw) -> MemoryNetwork:
    net = MemoryNetwork(seed, **kw)
    for i in range(n):
        net.add(f"m{i:02d}")
    for u, v in edges:
        net.link(f"m{u:02d}", f"m{v:02d}")
    return net


def tables(net: MemoryNetwork):
    return {mid: m.routing_table() for mid, m in sorted(net.members.items())}


def truth(net: MemoryNetwork):
    adj = net.adjacency()
    return sorted({tuple(sorted((u, v))) for u in adj for v in adj[u]})


random_graphs = st.builds(
    lambda n, p, seed: nx.gnp_random_graph(n, p, seed=seed),
    st.integers(1, 60),
    st.floats(0.0, 0.12),
    st.integers(0, 10_000),
)
slow_settings = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@slow_settings
@given(random_graphs, st.integers(0, 100))
def test_tables_converge_to_networkx_oracle(g, seed):
    edges = list(g.edges)
    net = build(g.number_of_nodes(), edges, seed)
    net.run_for(SETTLE)
    expected_links = {(f"m{u:02d}", f"m{v:02d}") for u, v in edges}
    assert set(truth(net)) == expected_links
    assert table_errors(tables(net), expected_links) == []
    again = build(g.number_of_nodes(), edges, seed)
    again.run_for(SETTLE)
    assert tables(again) == tables(net)


@slow_settings
@given(random_graphs, st.integers(0, 100), st.data())
def test_tables_reconverge_after_link_changes(g, seed, data):
    net = build(g.number_of_nodes(), list(g.edges), seed)
    net.run_for(SETTLE)
    names = sorted(net.members)
    for _ in range(data.draw(st.integers(1, 6))):
        a, b = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
        if a == b:
            continue
        if b in net.members[a].neighbours:
            net.unlink(a, b)
        else:
            net.link(a, b)
        net.run_for(data.draw(st.floats(0.0, 0.5)))
    net.run_for(SETTLE)
    assert table_errors(tables(net), truth(net)) == []
    # every member also computes exactly the table BFS gives over the true graph
    adj = net.adjacency()
    for mid, m in net.members.items():
        assert m.routes == next_hops(adj, mid)


@pytest.fixture
def line():
    """a-b-c-d plus a spare member e that is not yet linked."""
    net = MemoryNetwork(3)
    for x in "abcde":
        net.add(x)
    for u, v in ["ab", "bc", "cd"]:
        net.link(u, v)
    net.run_for(SETTLE)
    return net


def deliveries(net):
    return {e.fields["msg_id"]: e for e in net.tracer.of_kind(ev.DELIVER)}


def drops(net):
    return {e.fields["msg_id"]: e for e in net.tracer.of_kind(ev.DROP)}


def test_line_relays_with_recorded_path(line):
    got: list[Data] = []
    line.members["d"].on_deliver = got.append
    msg_id = line.members["a"].send("d", b"hello")
    line.run_for(1)
    assert [(d.msg_id, d.path, d.payload) for d in got] == [
        (msg_id, ["a", "b", "c", "d"], b"hello")
    ]
    assert deliveries(line)[msg_id].fields["hops"] == 3
    forwards = [e.member for e in line.tracer.of_kind(ev.FORWARD) if e.fields["msg_id"] == msg_id]
    assert forwards == ["b", "c"]


def test_counters_tally_each_frame_sent_by_kind(line):
    b = line.members["b"]
    assert "data" not in b.counters.frames_sent  # kinds never sent are left out
    frames, sent = dict(b.counters.frames_sent), dict(b.counters.bytes_sent)
    assert frames["hello"] == 2 and sent["hello"] >= 2 * 5  # one per peer, a header and more
    line.members["a"].send("c", b"12345")
    line.run_for(0.1)
    relayed = encode_frame(Data("a:1:1", "a", "c", 63, ["a", "b"], b"12345"))
    assert b.counters.frames_sent["data"] == 1
    assert b.counters.bytes_sent["data"] == len(relayed)
    for kind, n in frames.items():  # keepalive may have gone on meanwhile; no tally went back
        assert b.counters.frames_sent[kind] >= n
        assert b.counters.bytes_sent[kind] >= sent[kind]


def test_line_takes_detour_then_drops_with_no_route(line):
    line.link("b", "e")
    line.link("e", "c")
    line.run_for(SETTLE)
    line.unlink("b", "c")
    line.run_for(SETTLE)
    first = line.members["a"].send("d", b"x")
    line.run_for(1)
    assert deliveries(line)[first].fields["path"] == ["a", "b", "e", "c", "d"]
    line.unlink("e", "c")
    line.run_for(SETTLE)
    second = line.members["a"].send("d", b"y")
    line.run_for(1)
    assert second not in deliveries(line)
    assert drops(line)[second].fields["reason"] == "no_route"
    # nothing else broke: the side that is still connected still relays
    third = line.members["a"].send("e", b"z")
    line.run_for(1)
    assert deliveries(line)[third].fields["path"] == ["a", "b", "e"]
    assert table_errors(tables(line), truth(line)) == []


def test_send_right_after_losing_the_first_hop_is_a_traced_drop(line):
    a = line.members["a"]
    first = a.send("d", b"x")
    line.run_for(1)
    assert first in deliveries(line)
    line.unlink("a", "b")
    # no time passes: the routes are not recomputed yet, but the connection is gone
    second = a.send("d", b"y")
    assert drops(line)[second].fields["reason"] == "no_route"
    assert drops(line)[second].member == "a"


def test_remembered_first_hops_stay_bounded_and_right(line, monkeypatch):
    monkeypatch.setattr(member_module, "VIA_CACHE_SIZE", 2)
    a = line.members["a"]
    line.link("d", "e")
    line.run_for(SETTLE)
    sent = {dst: a.send(dst, b"x") for dst in "bcde"}
    line.run_for(1)
    assert len(a._via) <= 2
    got = deliveries(line)
    assert {dst: got[msg].fields["path"][-1] for dst, msg in sent.items()} == {d: d for d in "bcde"}


def test_a_newer_duplicate_connection_carries_the_traffic():
    net = MemoryNetwork(5)
    a = net.add("a")
    net.add("b")
    net.link("a", "b")
    net.run_for(SETTLE)
    first = a.send("b", b"x")
    net.run_for(1)
    (old,) = a.transport.ends
    net.link("a", "b")  # same opener: the newer connection replaces the older one
    net.run_for(SETTLE)
    assert list(a.transport.ends) != [old] and len(a.transport.ends) == 1
    second = a.send("b", b"y")
    net.run_for(1)
    assert first in deliveries(net) and second in deliveries(net)


def limited_line(names: str, limit: int, seed: int = 0) -> MemoryNetwork:
    """Members ``names`` linked in a line, with frames of at most ``limit`` bytes, settled."""
    net = MemoryNetwork(seed, config=MemberConfig(max_frame_size=limit))
    for x in names:
        net.add(x)
    for u, v in itertools.pairwise(names):
        net.link(u, v)
    net.run_for(SETTLE)
    return net


def test_a_relay_that_cannot_fit_its_id_on_the_path_drops_the_message_not_the_link():
    limit = 1000
    net = limited_line("abcd", limit, seed=3)
    # a payload whose frame fits exactly as the source sends it (path ["a"])
    base = len(encode_frame(Data("a:1:1", "a", "d", 64, ["a"], bytes(300)))) - 300
    payload = bytes(limit + 4 - base)
    assert len(encode_frame(Data("a:1:1", "a", "d", 64, ["a"], payload))) == limit + 4
    msg_id = net.members["a"].send("d", payload)
    net.run_for(1)
    (drop,) = [e for e in net.tracer.of_kind(ev.DROP) if e.fields["msg_id"] == msg_id]
    assert (drop.member, drop.fields["reason"]) == ("b", "too_large")
    assert net.tracer.of_kind(ev.PROTOCOL_ERROR) == []
    assert net.members["b"].neighbours == ["a", "c"]
    small = net.members["a"].send("d", b"fits")
    net.run_for(1)
    assert small in deliveries(net)
    with pytest.raises(LocalProtocolError):  # the source's own frame too large: its caller's fault
        net.members["a"].send("d", bytes(limit))


def frames_of(m, kind: str) -> int:
    return m.counters.frames_sent.get(kind, 0)


def test_a_relay_sends_what_it_relays_from_one_read_in_one_frame(line):
    got: list[Data] = []
    line.members["d"].on_deliver = got.append
    b, c = line.members["b"], line.members["c"]
    read = b"".join(encode_frame(Data(f"a:{i}", "a", "d", 64, ["a"], bytes([i]))) for i in range(5))
    b.data_received(b._peers["a"].handle, read)  # five frames in one read
    line.run_for(1)
    assert [(d.msg_id, d.path, d.payload) for d in got] == [
        (f"a:{i}", ["a", "b", "c", "d"], bytes([i])) for i in range(5)
    ]
    # b sent them on in one Batch frame; c, relaying that one frame, sent one too
    assert (frames_of(b, "batch"), frames_of(b, "data")) == (1, 0)
    assert (frames_of(c, "batch"), frames_of(c, "data")) == (1, 0)
    assert [e.member for e in line.tracer.of_kind(ev.FORWARD)] == ["b"] * 5 + ["c"] * 5


def test_sends_in_a_batch_block_share_one_frame_per_neighbour(line):
    got: list[Data] = []
    line.members["d"].on_deliver = got.append
    b = line.members["b"]
    b.on_deliver = got.append
    a = line.members["a"]
    with a.batch():
        ids = [a.send("d", bytes([i])) for i in range(4)] + [a.send("b", b"to b")]
        assert frames_of(a, "data") + frames_of(a, "batch") == 0  # nothing leaves in the block
    line.run_for(1)
    assert [d.msg_id for d in got] == [ids[4], *ids[:4]]  # b is one hop nearer
    assert (frames_of(a, "batch"), frames_of(a, "data")) == (1, 0)
    a.send("d", b"alone")  # outside a block each message is its own frame
    line.run_for(1)
    assert (frames_of(a, "batch"), frames_of(a, "data")) == (1, 1)


def test_a_batch_too_large_for_one_frame_leaves_in_frames_that_fit():
    limit = 2000
    net = limited_line("abc", limit, seed=1)
    got: list[Data] = []
    net.members["c"].on_deliver = got.append
    a = net.members["a"]
    with a.batch():
        ids = [a.send("c", bytes(100)) for _ in range(60)]  # ~8,000 bytes in all
    net.run_for(1)
    assert [d.msg_id for d in got] == ids
    assert net.tracer.of_kind(ev.PROTOCOL_ERROR) == []  # no frame over the peers' limit
    assert 4 <= frames_of(a, "batch") <= 8
    assert a.counters.bytes_sent["batch"] <= frames_of(a, "batch") * (limit + 4)


def test_a_relay_drops_only_the_batched_message_it_cannot_fit():
    limit = 1000
    net = limited_line("abc", limit, seed=3)
    b = net.members["b"]
    base = len(encode_frame(Data("big", "a", "c", 64, ["a"], bytes(300)))) - 300
    big = encode_frame(Data("big", "a", "c", 64, ["a"], bytes(limit + 4 - base)))
    assert len(big) == limit + 4  # fits as a sent it, not with b on its path
    small = encode_frame(Data("small", "a", "c", 64, ["a"], b"x"))
    b.data_received(b._peers["a"].handle, small + big + small.replace(b"small", b"smal2"))
    net.run_for(1)
    assert set(deliveries(net)) == {"small", "smal2"}
    assert drops(net)["big"].fields["reason"] == "too_large"
    assert net.tracer.of_kind(ev.PROTOCOL_ERROR) == []
    assert b.neighbours == ["a", "c"]


@pytest.mark.parametrize("then", ["leave", "disconnect"])
def test_batched_messages_leave_before_a_later_frame_on_their_connection(line, then):
    a = line.members["a"]
    with a.batch():
        msg_id = a.send("d", b"last words")
        # the final advert and Bye, or the close, go to b after the message, not before
        a.leave() if then == "leave" else a.disconnect("b")
    line.run_for(1)
    assert msg_id in deliveries(line)


def test_a_send_too_large_raises_in_a_batch_block_too_and_leaves_nothing_pending():
    limit = 1000
    net = limited_line("ab", limit)
    a = net.members["a"]
    with a.batch(), pytest.raises(LocalProtocolError, match="max frame size 1000"):
        a.send("b", bytes(limit), reliable=True)
    assert len(a._reliable.sender) == 0
    net.run_for(10)  # no retry of the refused message: nothing raises from a timer
    assert frames_of(a, "data") + frames_of(a, "batch") == 0


def test_ttl_expiry_is_a_drop_with_reason(line):
    # forge a nearly-expired message from a's position
    a = line.members["a"]
    a._forward(Data("forged", "a", "d", 2, ["a"], b""))
    line.run_for(1)
    assert drops(line)["forged"].fields["reason"] == "ttl_expired"
    assert drops(line)["forged"].member == "c"


def test_a_relay_already_on_the_path_drops_the_message_as_a_loop(line):
    # as if a and b disagreed about the route to d: a hands b a message that b passed on
    line.members["a"]._forward(Data("looped", "c", "d", 9, ["c", "b", "a"], b""))
    line.run_for(1)
    assert (drops(line)["looped"].member, drops(line)["looped"].fields["reason"]) == ("b", "loop")
    assert "looped" not in deliveries(line)


def test_messages_read_after_one_that_closed_the_connection_are_not_handled(line):
    b = line.members["b"]
    conn = b._peers["a"].handle
    b.data_received(conn, encode_frame(Data("early", "a", "b", 64, ["a"], b"x")))
    assert "early" in deliveries(line)
    # one read holding a Bye and then a Data: the Bye closes the link, the Data is not handled
    late = encode_frame(Bye("leaving")) + encode_frame(Data("late", "a", "b", 64, ["a"], b"x"))
    b.data_received(conn, late)
    assert "a" not in b.neighbours
    assert "late" not in deliveries(line)


@pytest.mark.parametrize("member_id", ["", "m" * 129])
def test_a_member_id_the_wire_cannot_carry_is_refused(member_id):
    with pytest.raises(ValueError, match="member id"):
        MemoryNetwork(0).add(member_id)


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"keepalive_interval": 0}, "keepalive_interval"),
        ({"keepalive_interval": 2.0, "dead_timeout": 2.0}, "dead_timeout"),
        ({"default_ttl": 1025}, "default_ttl"),
    ],
)
def test_a_setting_out_of_range_names_its_field(settings, field):
    with pytest.raises(ConfigError) as info:
        MemberConfig(**settings)
    assert info.value.field == field
    assert str(info.value).startswith(f"MemberConfig.{field} must")
    assert isinstance(info.value, ValueError)  # what callers caught before it had a name


def test_the_longest_member_id_the_wire_carries_works():
    longest = "m" * 128
    net = MemoryNetwork(0)
    net.add("a")
    net.add(longest)
    net.link("a", longest)
    net.run_for(SETTLE)
    assert net.members["a"].routing_table() == {longest: {"next_hop": longest, "hops": 1}}


def test_send_to_self_and_to_unknown():
    net = MemoryNetwork()
    a = net.add("a")
    mine = a.send("a", b"me")
    nobody = a.send("zz", b"?")
    net.run_for(1)
    assert deliveries(net)[mine].fields["path"] == ["a"]
    assert drops(net)[nobody].fields["reason"] == "no_route"


def test_duplicate_connections_resolve_to_one_both_sides_agree():
    net = MemoryNetwork(5)
    a, b = net.add("a"), net.add("b")
    for _ in range(3):
        net.link("a", "b")
        net.link("b", "a")
    net.run_for(SETTLE)
    assert a.neighbours == ["b"] and b.neighbours == ["a"]
    assert len(a.transport.ends) == 1 and len(b.transport.ends) == 1
    a_end = next(iter(a.transport.ends.values()))
    assert a_end.out.dst.transport is b.transport
    assert table_errors(tables(net), [("a", "b")]) == []


def test_silent_failure_detected_by_keepalive(line):
    cfg = line.config
    line.blackhole("b", "c")
    start = line.clock.now
    ok = line.run_until(
        lambda: "c" not in line.members["b"].neighbours and "b" not in line.members["c"].neighbours,
        timeout=10,
    )
    assert ok
    assert line.clock.now - start <= cfg.dead_timeout + cfg.keepalive_interval
    reasons = [e.fields["reason"] for e in line.tracer.of_kind(ev.DISCONNECT) if e.member == "b"]
    assert any(r.startswith("keepalive timeout") for r in reasons)
    line.run_for(SETTLE)
    assert table_errors(tables(line), truth(line)) == []


def idle_pair(latency: float) -> MemoryNetwork:
    cfg = MemberConfig(keepalive_interval=0.15, dead_timeout=0.6)
    net = MemoryNetwork(2, latency=latency, config=cfg)
    net.add("a")
    net.add("b")
    net.link("a", "b")
    net.run_for(2)
    return net


def pings_sent(net: MemoryNetwork) -> dict[str, int]:
    return {mid: m.counters.frames_sent.get("ping", 0) for mid, m in net.members.items()}


def test_keepalive_between_two_peers_is_one_ping_an_interval():
    net = idle_pair(0.001)
    before = pings_sent(net)
    net.run_for(3.0)  # 20 keepalive intervals
    after = pings_sent(net)
    # the larger id pings every interval; the smaller only answers
    assert 19 <= after["b"] - before["b"] <= 21
    assert after["a"] - before["a"] <= 1
    assert net.members["a"].neighbours == ["b"]


@pytest.mark.parametrize("latency", [0.05, 0.3])
def test_keepalive_keeps_a_slow_link_up(latency):
    # a quiet link stands while the round trip stays under the dead timeout
    net = idle_pair(latency)
    net.run_for(10)
    assert net.members["a"].neighbours == ["b"] and net.members["b"].neighbours == ["a"]
    assert not [e for e in net.tracer.of_kind(ev.DISCONNECT)]


def test_graceful_leave_reconverges(line):
    line.members["c"].leave()
    line.run_for(SETTLE)
    del line.members["c"]
    assert table_errors(tables(line), truth(line)) == []
    assert "d" not in line.members["a"].routes
    bye = [e for e in line.tracer.of_kind(ev.DISCONNECT) if e.member == "b"]
    assert bye and bye[-1].fields["reason"] == "peer left: leaving"


def restarted_with_stale_advert(incarnation: int | None) -> tuple[MemoryNetwork, int]:
    """a-b-c with c's seq pushed up, then c killed and started again (in ``incarnation``, the
    next one if None) and linked to b; returns the network and c's old seq."""
    net = MemoryNetwork(9)
    for x in "abc":
        net.add(x)
    net.link("a", "b")
    net.link("b", "c")
    net.run_for(SETTLE)
    for _ in range(5):  # push c's seq up
        net.unlink("c", "b")
        net.run_for(0.5)
        net.link("c", "b")
        net.run_for(0.5)
    old_seq = net.members["a"].db.get("c").advert.seq
    assert old_seq > 5
    net.kill("c")
    net.run_for(SETTLE)
    c = net.add("c", incarnation=incarnation)
    assert c.db.own.advert.seq == 1
    net.link("c", "b")
    net.run_for(SETTLE)
    return net, old_seq


def test_a_restart_in_a_new_incarnation_outranks_the_old_life_at_once():
    net, _ = restarted_with_stale_advert(None)
    c = net.members["c"]
    assert c.incarnation == 2 and c.db.own.advert.incarnation == 2
    assert net.members["a"].db.get("c").advert == c.db.own.advert
    assert not net.tracer.of_kind(ev.FIGHT_BACK)
    assert table_errors(tables(net), truth(net)) == []


def test_a_restart_in_the_same_incarnation_fights_back_above_stale_seq():
    net, old_seq = restarted_with_stale_advert(1)
    c = net.members["c"]
    assert c.db.own.advert.seq > old_seq
    (fight,) = net.tracer.of_kind(ev.FIGHT_BACK)
    assert fight.fields["heard"] == [1, old_seq] and not fight.fields["flush"]
    assert table_errors(tables(net), truth(net)) == []


def test_departed_member_expires_after_max_age():
    cfg = MemberConfig(max_age=5.0)
    net = MemoryNetwork(1, config=cfg)
    for x in "abc":
        net.add(x)
    net.link("a", "b")
    net.link("b", "c")
    net.run_for(SETTLE)
    net.kill("c")
    net.run_for(2)
    assert "c" in net.members["a"].db
    net.run_for(cfg.max_age + 2 * cfg.keepalive_interval)
    assert "c" not in net.members["a"].db and "c" not in net.members["b"].db


def test_reliable_send_retries_until_acked():
    net = MemoryNetwork(2)
    for x in "ab":
        net.add(x)
    net.link("a", "b")
    net.run_for(SETTLE)
    net.blackhole("a", "b")
    msg_id = net.members["a"].send("b", b"important", reliable=True)
    net.run_for(0.01)
    # the first copy is lost; reconnect and let the retry deliver it
    net.unlink("a", "b")
    net.link("a", "b")
    net.run_for(SETTLE)
    assert msg_id in deliveries(net)
    assert [e.fields["msg_id"] for e in net.tracer.of_kind(ev.ACKED)] == [msg_id]
    assert net.tracer.of_kind(ev.RETRY)


def test_reliable_send_gives_up_with_no_ack():
    net = MemoryNetwork(2)
    net.add("a")
    msg_id = net.members["a"].send("b", b"x", reliable=True)
    net.run_for(net.config.reliable_deadline + 0.1)
    reasons = [
        e.fields["reason"] for e in net.tracer.of_kind(ev.DROP) if e.fields["msg_id"] == msg_id
    ]
    assert reasons[-1] == "no_ack"


@pytest.mark.parametrize(
    "payload, error",
    [
        (b"\x00\x00\x00\x03abc", "MalformedMessage"),
        (b"\xff\xff\xff\xff", "FrameTooLarge"),
        (encode_frame(Data("x", "a", "b", 3, ["a"], b"")), "HandshakeError"),
        (encode_frame(Batch([Data("x", "a", "b", 3, ["a"], b"")])), "HandshakeError"),
        (encode_frame(Hello("zz", "", 99)), "HandshakeError"),
    ],
)
def test_hostile_peer_costs_only_its_connection(line, payload, error):
    raw = RawPeer()
    t = line.transport("mem:raw")
    t.handler = raw
    t.connect("mem:b")
    line.run_until(lambda: raw.conns, timeout=1)
    t.send(raw.conns[0], payload)
    line.run_until(lambda: raw.lost, timeout=1)
    assert raw.lost == ["closed by peer"]
    errs = [e for e in line.tracer.of_kind(ev.PROTOCOL_ERROR) if e.member == "b"]
    assert [e.fields["error"] for e in errs] == [error]
    msg_id = line.members["a"].send("d", b"still")
    line.run_for(1)
    assert msg_id in deliveries(line)


def test_handshake_deadline_closes_silent_connection(line):
    raw = RawPeer()
    t = line.transport("mem:raw")
    t.handler = raw
    t.connect("mem:b")
    assert line.run_until(lambda: raw.lost, timeout=line.config.handshake_timeout + 1)
    errs = [e.fields["detail"] for e in line.tracer.of_kind(ev.PROTOCOL_ERROR)]
    assert errs == [f"no Hello within {line.config.handshake_timeout}s"]


def test_auto_connect_reaches_target_degree():
    cfg = MemberConfig(target_degree=3)
    net = MemoryNetwork(4, config=cfg)
    for i in range(12):
        net.add(f"n{i:02d}")
    for i in range(1, 12):
        net.link(f"n{i:02d}", "n00")
    net.run_for(SETTLE * 2)
    assert all(len(m.neighbours) >= 3 for m in net.members.values())
    assert table_errors(tables(net), truth(net)) == []


def test_whole_database_shared_on_connect():
    """A newcomer learns the whole network from the single peer it connects to."""
    net = build(6, [(0, 1), (1, 2), (2, 3), (3, 4)], seed=1)
    net.run_for(SETTLE)
    net.link("m05", "m04")
    net.run_for(0.1)
    assert set(net.members["m05"].db) == set(net.members)


def test_connection_limit_turns_away_extra_peers():
    net = MemoryNetwork(6, config=MemberConfig(max_connections=2))
    hub = net.add("hub")
    for i in range(4):
        net.add(f"s{i}")
        net.link(f"s{i}", "hub")
    net.run_for(SETTLE)
    assert len(hub.neighbours) == 2
    limited = [
        e
        for e in net.tracer.of_kind(ev.DISCONNECT)
        if e.member == "hub" and e.fields["reason"].startswith(("evicted", "connection limit"))
    ]
    assert len(limited) >= 2  # turned away, or an older handshake evicted for a newer one
    assert table_errors(tables(net), truth(net)) == []


def test_an_advert_is_not_flooded_back_to_a_peer_that_sent_it(line):
    """b learns x from p, and then from q before its flood leaves: neither p nor q gets it."""
    peers = {}
    for name in "pq":
        raw = RawPeer()
        t = line.transport(f"mem:{name}")
        t.handler = raw
        t.connect("mem:b")
        assert line.run_until(lambda raw=raw: raw.conns, timeout=1)
        t.send(raw.conns[0], encode_frame(Hello(name, f"mem:{name}", PROTOCOL_VERSION)))
        peers[name] = (t, raw)
    assert line.run_until(lambda: {"p", "q"} <= set(line.members["b"].neighbours), timeout=1)
    line.run_for(0.5)
    for _, raw in peers.values():
        raw.data = b""
    news = encode_frame(Adverts([encode_advert(Advert("x", 1, 1, ("p", "q"), "mem:x"))]))
    for t, raw in peers.values():
        t.send(raw.conns[0], news)
    line.run_for(0.5)
    assert line.members["b"].db.get("x") is not None
    for name, (_, raw) in peers.items():
        told = [
            decode_advert(a).origin
            for m in FrameDecoder().feed(raw.data)
            if isinstance(m, Adverts)
            for a in m.adverts
        ]
        assert "x" not in told, f"{name} was told about x"
    assert "x" in line.members["c"].db


def test_a_change_that_cannot_alter_a_tree_costs_no_recompute_there():
    # m00 reaches m01 and m02 in one hop each: a link between them changes nothing for m00,
    # while a link from m02 to m04 (three hops away, via m01 and m03) shortens a path
    net = build(5, [(0, 1), (0, 2), (1, 3), (3, 4)])
    net.run_for(SETTLE)
    hub, m01 = net.members["m00"], net.members["m01"]
    before, m01_before = hub.counters.route_computations, m01.counters.route_computations
    net.link("m01", "m02")
    net.run_for(SETTLE)
    assert m01.counters.route_computations > m01_before
    assert hub.counters.route_computations == before
    assert table_errors(tables(net), truth(net)) == []
    assert hub.routes["m04"].hops == 3
    net.link("m02", "m04")
    net.run_for(SETTLE)
    assert hub.counters.route_computations > before
    assert hub.routes["m04"] == ("m02", 2)
    assert table_errors(tables(net), truth(net)) == []
