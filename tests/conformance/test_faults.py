"""One fault contract, checked against every backend through the Network protocol alone.

Each fault must mean the same in the simulator, in the in-process real network and with a
process per member: who is told, and when, and what the fault reports it did. The members run
the scenario settings (keepalive every 0.15 s, dead after 0.6 s), so "at once" below means well
within a keepalive period and "by keepalive" means after the dead timeout.
"""

from collections.abc import Callable, Iterator

import pytest

from peerlab import trace as ev
from peerlab.network import Network, network_class
from peerlab.scenario import load_scenario, member_config
from peerlab.trace import Tracer

SCENARIO = load_scenario(
    "faults",
    text="""
members: [a, b, c]
topology: {links: [[a, b], [b, c]]}
defaults: {latency: 2ms}
""",
)
CONFIG = member_config(SCENARIO)
AT_ONCE = 0.3  # scenario seconds: less than the dead timeout, more than a few link latencies
BY_KEEPALIVE = CONFIG.dead_timeout + 2 * CONFIG.keepalive_interval + 0.5


@pytest.fixture(
    params=["sim", "real", pytest.param("proc", marks=pytest.mark.slow)],
)
def net(request, no_leaks) -> Iterator[Network]:
    net = network_class(request.param).for_scenario(SCENARIO, config=CONFIG, tracer=Tracer())
    try:
        assert isinstance(net, Network)
        for m in SCENARIO.members:
            net.add_member(m)
        for link in SCENARIO.links:
            net.connect(link.a, link.b)
        net.start_clock()
        assert eventually(net, lambda: links(net) == {("a", "b"), ("b", "c")}, 5.0)
        yield net
    finally:
        net.close()


def eventually(net: Network, holds: Callable[[], bool], within: float) -> bool:
    """Let the network run until ``holds()`` (looked at in the members' context), at most
    ``within`` scenario seconds."""
    end = net.now + within
    while not net.call(holds):
        if net.now >= end:
            return False
        net.advance_to(min(end, net.now + net.poll_interval))
    return True


def links(net: Network) -> set[tuple[str, str]]:
    """The links both ends hold (read in the members' context)."""
    members = net.members
    return {
        (a, b)
        for a in members
        for b in members[a].neighbours
        if a < b and b in members and a in members[b].neighbours
    }


def told(net: Network, member: str, peer: str) -> bool:
    """Whether ``member`` no longer holds ``peer`` as a neighbour."""
    return peer not in net.members[member].neighbours


def test_link_down_tells_both_ends_at_once_and_the_link_stays_down(net):
    report = net.link_down("a", "b")
    assert (report.kind, report.target, report.conns_cut) == ("link_down", "a-b", 1)
    assert {"a", "b"} <= report.members_affected and report.hit
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "b", "a"), AT_ONCE)
    net.advance_to(net.now + 1.0)
    assert net.call(lambda: links(net)) == {("b", "c")}


def test_a_silent_cut_tells_nobody_until_keepalive_finds_out(net):
    report = net.link_down("a", "b", silent=True)
    assert (report.kind, report.hit) == ("link_cut", True)
    net.advance_to(net.now + CONFIG.keepalive_interval / 2)
    assert net.call(lambda: not told(net, "a", "b"))  # not yet: nobody was told
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "b", "a"), BY_KEEPALIVE)
    assert net.call(lambda: links(net)) == {("b", "c")}


def test_link_up_restores_the_path_and_dials(net):
    net.link_down("a", "b")
    assert eventually(net, lambda: told(net, "a", "b"), AT_ONCE)
    report = net.link_up("a", "b")
    assert report.kind == "link_up" and report.members_affected == {"a", "b"}
    assert eventually(net, lambda: ("a", "b") in links(net), 2.0)


@pytest.mark.parametrize("one_way", [False, True])
def test_a_partition_holds_bytes_between_groups_until_heal(net, one_way):
    report = net.partition([["a"], ["b", "c"]], one_way=one_way)
    assert report.kind == ("partition_one_way" if one_way else "partition") and report.hit
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "b", "a"), BY_KEEPALIVE)
    assert net.call(lambda: links(net)) == {("b", "c")}  # inside a group nothing changes
    heal = net.heal()
    assert heal.kind == "heal" and heal.hit
    net.connect("a", "b")
    assert eventually(net, lambda: ("a", "b") in links(net), 2.0)


def test_a_crash_resets_connections_at_once_and_restart_is_a_new_life(net):
    life = net.incarnations["b"]
    report = net.crash("b")
    assert (report.kind, report.conns_cut) == ("crash", 2) and report.members_affected >= {
        "a",
        "b",
        "c",
    }
    assert "b" not in net.members
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "c", "b"), AT_ONCE)
    restart = net.restart("b", join=["a", "c"])
    assert restart.kind == "restart" and net.incarnations["b"] == life + 1
    assert eventually(net, lambda: links(net) == {("a", "b"), ("b", "c")}, 3.0)


def test_power_off_tells_nobody_and_peers_find_out_by_keepalive(net):
    report = net.power_off("b")
    assert report.kind == "power_off" and report.members_affected >= {"a", "b", "c"}
    assert "b" not in net.members
    net.advance_to(net.now + CONFIG.keepalive_interval / 2)
    assert net.call(lambda: not told(net, "a", "b"))
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "c", "b"), BY_KEEPALIVE)
    net.restart("b", join=["a", "c"])
    assert eventually(net, lambda: links(net) == {("a", "b"), ("b", "c")}, 3.0)


def test_a_paused_member_is_found_dead_by_keepalive_and_goes_on_after_resume(net):
    report = net.pause("b")
    assert report.kind == "pause" and report.members_affected == {"b"}
    assert "b" in net.members  # still running, just not answering
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "c", "b"), BY_KEEPALIVE)
    resumed = net.resume("b")
    assert resumed.kind == "resume"
    net.connect("a", "b")
    net.connect("c", "b")
    assert eventually(net, lambda: links(net) == {("a", "b"), ("b", "c")}, 3.0)


def test_leave_says_goodbye_to_every_neighbour(net):
    report = net.leave("b")
    assert (report.kind, report.conns_cut) == ("leave", 2)
    assert "b" not in net.members
    assert eventually(net, lambda: told(net, "a", "b") and told(net, "c", "b"), AT_ONCE)
    net.advance_to(net.now + 0.2)  # the proc backend streams its members' trace events
    reasons = {
        e.member: e.fields["reason"]
        for e in net.tracer.events
        if e.kind == ev.DISCONNECT and e.fields.get("peer") == "b"
    }
    assert reasons == {"a": "peer left: leaving", "c": "peer left: leaving"}


def test_join_starts_a_member_that_dials_its_peers(net):
    report = net.join("d", ["c"])
    assert report.kind == "join" and report.members_affected == {"c", "d"}
    assert net.incarnations["d"] == 1
    assert eventually(net, lambda: ("c", "d") in links(net), 2.0)
