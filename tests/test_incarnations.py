"""Lives and sequence numbers: restarts, the bounded sequence space, unique message ids."""

from itertools import pairwise
from pathlib import Path

import pytest
from memnet import MemoryNetwork, raw_peer

import peerlab
from peerlab import trace as ev
from peerlab.linkstate import key
from peerlab.oracle import table_errors
from peerlab.wire import (
    MAX_INCARNATION,
    MAX_SEQ,
    PROTOCOL_VERSION,
    Adverts,
    Hello,
    encode_frame,
)

ROOT = Path(__file__).resolve().parent.parent
SETTLE = 8.0
WINDOW = 2.0  # a convergence window: flood delay, route hold and a few hops, with room


def tables(net):
    return {mid: m.routing_table() for mid, m in sorted(net.members.items())}


def truth(net):
    adj = net.adjacency()
    return sorted({tuple(sorted((u, v))) for u in adj for v in adj[u]})


@pytest.mark.parametrize("backend", ["sim", "real"])
def test_a_restarted_member_with_an_equal_seq_is_reachable_within_the_window(backend):
    """a-b-m; m's advert reaches seq 2 listing b; m crashes, restarts linked only to a new n and
    reaches seq 2 again, listing n; then n links to b: a and b route to m through n."""
    result = peerlab.run(ROOT / "scenarios" / "restart-new-life.yaml", backend)
    assert result.ok, [e for e in result.expectations if not e["ok"]]
    assert result.table("a")["m"] == {"next_hop": "b", "hops": 3}
    (to_m,) = [m for m in result.messages if m["dst"] == "m"]
    assert to_m["path"] == ["a", "b", "n", "m"]


def line(n: int = 4) -> MemoryNetwork:
    net = MemoryNetwork(5)
    names = "abcdefgh"[:n]
    for x in names:
        net.add(x)
    for u, v in pairwise(names):
        net.link(u, v)
    net.run_for(SETTLE)
    return net


def forge(net: MemoryNetwork, at: str, origin: str, incarnation: int, seq: int, neighbours=()):
    """A raw peer 'z' that says Hello to ``at`` and hands it an advert about ``origin``."""
    t, peer = raw_peer(net, "z", at)
    body = encode_frame(Hello("z", "mem:z", PROTOCOL_VERSION, 1))
    body += encode_frame(Adverts([_raw(origin, incarnation, seq, neighbours)]))
    t.send(peer.conns[0], body)
    return peer


def _raw(origin, incarnation, seq, neighbours):
    import msgspec

    return msgspec.Raw(msgspec.msgpack.encode([origin, incarnation, seq, list(neighbours), ""]))


@pytest.mark.parametrize(
    "incarnation, seq, flushed",
    [
        (1, MAX_SEQ, False),  # the last seq: c goes on in its next incarnation
        (1, MAX_SEQ - 1, False),  # just below it
        (MAX_INCARNATION - 1, MAX_SEQ, True),  # nothing above it but the reserved incarnation
        (MAX_INCARNATION, 7, True),  # in the reserved incarnation itself
        (MAX_INCARNATION, MAX_SEQ, False),  # a forged flush of c: c re-originates, no flush
    ],
)
def test_an_advert_at_or_near_the_top_of_the_sequence_space_heals(incarnation, seq, flushed):
    net = line()
    before = len(net.tracer.events)
    neighbours = () if (incarnation, seq) == (MAX_INCARNATION, MAX_SEQ) else ("z", "a")
    forge(net, "b", "c", incarnation, seq, neighbours)
    net.run_for(WINDOW)
    # nothing escaped (a raise would have ended the test), and every table is right again
    assert table_errors(tables(net), truth(net)) == [], tables(net)
    fights = [e for e in net.tracer.events[before:] if e.kind == ev.FIGHT_BACK]
    assert fights and fights[0].member == "c" and fights[0].fields["flush"] is flushed
    own = net.members["c"].db.own
    assert all(m.db.get("c").advert == own.advert for m in net.members.values())
    # and c's advert still changes: d leaves c, everyone hears it
    net.unlink("c", "d")
    net.run_for(WINDOW)
    assert key(net.members["c"].db.own.order) > key(own.order)
    assert net.members["a"].db.get("c").advert.neighbours == ("b",)
    assert table_errors(tables(net), truth(net)) == []


@pytest.mark.parametrize("incarnation, seq", [(1, 2**64 - 1), (2**64 - 1, 1), (1, 0)])
def test_an_order_out_of_range_costs_the_sender_its_connection_only(incarnation, seq):
    net = line()
    peer = forge(net, "b", "c", incarnation, seq, ("z",))
    assert net.run_until(lambda: peer.lost, timeout=1)
    (error,) = net.tracer.of_kind(ev.PROTOCOL_ERROR)
    assert error.member == "b" and error.fields["error"] == "MalformedMessage"
    assert key(net.members["a"].db.get("c").order) == key(net.members["c"].db.own.order)
    assert table_errors(tables(net), truth(net)) == []


def test_results_list_every_message_of_a_sender_that_restarted_between_sends():
    scenario = peerlab.load_scenario(
        "sender-restart",
        text="""
members: [a, b, c]
topology: {links: [[a, b], [b, c]]}
events:
  - {at: 0.5s, send: {from: a, to: c, payload: one}}
  - {at: 1s, crash: a}
  - {at: 1.2s, send: {from: a, to: c, payload: while down}}
  - {at: 1.5s, restart: a}
  - {at: 2.5s, send: {from: a, to: c, payload: two}}
  - {at: 2.6s, send: {from: a, to: c, payload: three}}
expect: {delivered: 0.75, invariants: true}
""",
    )
    result = peerlab.run(scenario)
    ids = [m["id"] for m in result.messages]
    assert ids == ["a:1:1", "a:down:1", "a:2:1", "a:2:2"]  # in the order sent
    assert [m["drop_reason"] for m in result.messages] == [None, "sender_down", None, None]
    assert result.ok
