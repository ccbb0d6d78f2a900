"""Reliable delivery keeps its contract (README, "Reliable delivery").

Delivered at most once to a receiver that does not restart; acknowledged only once delivered;
retried on a timer and when a route appears, until a deadline; every message ends acknowledged
or reported failed. Counted by payload, not by message id.
"""

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlab import trace as ev
from peerlab.member import Member, MemberConfig
from peerlab.reliable import WINDOW_MAX, Receipt, ReliableReceiver, ReliableSender
from peerlab.sim import SimNetwork
from peerlab.wire import Data, Reliable

FAST = MemberConfig(keepalive_interval=0.15, dead_timeout=0.6, ack_timeout=0.25)


def network(member_class=Member, config=FAST, names="abc", seed=1) -> SimNetwork:
    net = SimNetwork(seed, config=config, member_class=member_class)
    got: list[tuple[str, bytes]] = []
    net.on_deliver = lambda member, data: got.append((member, data.payload))
    net.got = got
    for x in names:
        net.add_member(x)
    for u, v in itertools.pairwise(names):
        net.connect(u, v)
    net.run(2.0)
    return net


def outcomes(net: SimNetwork, msg_ids) -> dict[str, str]:
    """What became of each message at its sender: acked, or the drop reason."""
    wanted, out = set(msg_ids), {}
    for e in net.tracer.events:
        msg_id = e.fields.get("msg_id")
        if msg_id in wanted and e.member == msg_id.split(":")[0] and not e.fields.get("ack"):
            if e.kind == ev.ACKED:
                out[msg_id] = "acked"
            elif e.kind == ev.DROP and e.fields["reason"] in ("no_ack", "sender_stopped"):
                out[msg_id] = e.fields["reason"]
    return out


def test_a_restarted_sender_s_new_messages_are_delivered_not_taken_for_duplicates():
    net = network()
    first = [net.members["a"].send("c", b"first %d" % i, reliable=True) for i in range(10)]
    net.run(1.0)
    net.crash("a")
    net.restart("a", join=["b"])
    net.run(1.0)
    second = [net.members["a"].send("c", b"second %d" % i, reliable=True) for i in range(10)]
    net.run(2.0)
    assert not set(first) & set(second)  # ids carry the life
    assert Counter(p for m, p in net.got if m == "c") == Counter(
        [b"first %d" % i for i in range(10)] + [b"second %d" % i for i in range(10)]
    )
    assert set(outcomes(net, second).values()) == {"acked"}


def test_after_a_receiver_restart_nothing_acknowledged_is_delivered_again():
    net = network()
    acked = [net.members["a"].send("c", b"before %d" % i, reliable=True) for i in range(5)]
    net.run(1.0)
    assert set(outcomes(net, acked).values()) == {"acked"}
    net.crash("c")
    net.restart("c", join=["b"])
    net.run(2.0)
    after = [net.members["a"].send("c", b"after %d" % i, reliable=True) for i in range(5)]
    net.run(2.0)
    assert Counter(p for m, p in net.got if m == "c") == Counter(
        [b"before %d" % i for i in range(5)] + [b"after %d" % i for i in range(5)]
    )
    assert set(outcomes(net, after).values()) == {"acked"}


class HoldsFirstAck(Member):
    """Holds back the first acknowledgement it sends by 1.5 s."""

    held = False

    def _forward(self, message):
        if type(message).__name__ == "Ack" and not HoldsFirstAck.held:
            HoldsFirstAck.held = True
            self.transport.call_later(1.5, lambda: Member._forward(self, message))
            return
        super()._forward(message)


def test_five_thousand_messages_while_one_ack_is_held_are_each_delivered_once():
    HoldsFirstAck.held = False
    net = network(HoldsFirstAck, names="ab")
    a = net.members["a"]
    with a.batch():
        ids = [a.send("b", b"m%d" % i, reliable=True) for i in range(5000)]
    net.run(8.0)
    delivered = Counter(p for m, p in net.got if m == "b")
    assert len(delivered) == 5000 and set(delivered.values()) == {1}
    assert set(outcomes(net, ids).values()) == {"acked"}
    # the held ack's message was retried and acknowledged again: a duplicate, not redelivered
    assert net.tracer.of_kind(ev.RETRY)


def test_a_message_waiting_for_a_route_goes_when_the_route_appears_not_on_the_next_timer():
    config = MemberConfig(keepalive_interval=0.15, dead_timeout=0.6, ack_timeout=2.0)
    net = network(config=config)
    net.link_down("b", "c")
    net.run(0.5)
    msg_id = net.members["a"].send("c", b"later", reliable=True)
    net.run(0.3)
    up = net.now
    net.link_up("b", "c")
    net.run(1.0)
    (delivered,) = [e for e in net.tracer.of_kind(ev.DELIVER) if e.fields["msg_id"] == msg_id]
    assert delivered.time - up < 0.3  # long before the first retry, 2 s after the send
    assert outcomes(net, [msg_id]) == {msg_id: "acked"}


def test_an_undeliverable_message_is_reported_failed_at_its_deadline():
    config = MemberConfig(reliable_deadline=3.0)
    net = network(config=config, names="ab")
    net.crash("b")
    msg_id = net.members["a"].send("b", b"nobody", reliable=True)
    sent = net.now
    net.run(5.0)
    (drop,) = [e for e in net.tracer.of_kind(ev.DROP) if e.fields["msg_id"] == msg_id]
    assert drop.fields["reason"] == "no_ack" and drop.time == pytest.approx(sent + 3.0)
    assert not [e for e in net.tracer.of_kind(ev.ACKED) if e.fields["msg_id"] == msg_id]


def test_a_member_that_stops_reports_its_unsettled_messages():
    net = network(names="ab")
    net.crash("b")
    ids = [net.members["a"].send("b", b"x", reliable=True) for _ in range(3)]
    net.leave("a")
    assert outcomes(net, ids) == {i: "sender_stopped" for i in ids}


# --- the state alone ---------------------------------------------------------------------


def data(n: int) -> Data:
    return Data(f"a:1:{n}", "a", "b", 8, ["a"], b"")


def test_the_window_holds_later_messages_until_the_floor_moves():
    sender = ReliableSender(life=1, window=3)
    pending = [sender.open(data(n), "b", 10.0) for n in range(1, 7)]
    assert [sender.in_window(p) for p in pending] == [True, True, True, False, False, False]
    assert sender.settle(pending[1]) == []  # the floor stays at 1
    assert sender.stamp(pending[2]).reliable == Reliable(1, 3, 1)
    assert sender.settle(pending[0]) == pending[3:5]  # floor 3: numbers 3, 4, 5 in the window
    assert sender.stamp(pending[4]).reliable == Reliable(1, 5, 3)
    assert sender.towards("b") == pending[2:5]


def test_the_receiver_forgets_below_the_floor_and_refuses_beyond_the_window():
    receiver = ReliableReceiver()
    assert receiver.receive("a", Reliable(1, 1, 1)) is Receipt.NEW
    assert receiver.receive("a", Reliable(1, 1, 1)) is Receipt.DUPLICATE
    assert receiver.receive("a", Reliable(1, 3, 2)) is Receipt.NEW
    assert receiver.receive("a", Reliable(1, 1, 2)) is Receipt.SETTLED
    assert receiver.receive("a", Reliable(1, 2 + WINDOW_MAX, 2)) is Receipt.REFUSED
    assert receiver.receive("a", Reliable(2, 1, 1)) is Receipt.NEW  # a new life starts afresh
    assert receiver.receive("a", Reliable(3, 1, 1)) is Receipt.NEW
    assert receiver.receive("a", Reliable(1, 9, 9)) is Receipt.REFUSED  # a life no longer kept


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from(["send", "deliver", "ack", "expire"]), st.integers(0, 30)),
        max_size=120,
    ),
    st.integers(1, 6),
)
def test_any_interleaving_delivers_each_number_at_most_once_and_acks_only_delivered(ops, window):
    """Sends, retransmissions arriving late or twice, acks and deadlines in any order."""
    sender, receiver = ReliableSender(1, window), ReliableReceiver()
    wire: list[Reliable] = []  # what was transmitted, in any order of arrival
    delivered: Counter[int] = Counter()
    acked: set[int] = set()
    pending = {}
    for op, n in ops:
        if op == "send":
            p = sender.open(data(len(pending) + 1), "b", 0.0)
            pending[p.number] = p
        elif op == "deliver" and wire:  # some copy arrives, perhaps again
            meta = wire[n % len(wire)]
            if receiver.receive("a", meta) is Receipt.NEW:
                delivered[meta.seq] += 1
            p = pending.get(meta.seq)
            if meta.seq in delivered and p is not None and sender.get(p.data.msg_id):
                acked.add(meta.seq)  # its ack comes back
                sender.settle(p)
        elif op in ("ack", "expire") and pending:  # the sender gives one up
            p = pending[1 + n % len(pending)]
            if sender.get(p.data.msg_id):
                sender.settle(p)
        for p in sender.towards("b"):  # (re)transmit what the window allows
            wire.append(sender.stamp(p).reliable)
    assert all(count == 1 for count in delivered.values())
    assert acked <= set(delivered)
