"""Members as separate OS processes on loopback (the real backend's multi-process mode)."""

import dataclasses
import os
import time
from pathlib import Path

import pytest

from peerlab import trace as ev
from peerlab.compare import compare_results
from peerlab.member import MemberConfig
from peerlab.oracle import table_errors
from peerlab.realnet.procnet import ProcessNetwork
from peerlab.runner import run
from peerlab.scenario import load_scenario

FAST = MemberConfig(handshake_timeout=2.0, keepalive_interval=0.2, dead_timeout=0.8)
ROOT = Path(__file__).resolve().parent.parent


def children() -> set[int]:
    """Pids of this process's children (read from /proc)."""
    me, out = os.getpid(), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            out.add(int(pid))
    return out


@pytest.fixture
def net():
    before = children()
    n = ProcessNetwork(seed=2, config=FAST)
    yield n
    n.close()
    assert children() == before, "every worker process is reaped"


def wait(net, links, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        errors = net.call(
            lambda: table_errors({m: p.routes for m, p in net.members.items()}, links)
        )
        pending = any(p.routes_pending for p in net.members.values())
        if not errors and not pending:
            return
        time.sleep(0.05)
    raise AssertionError(errors)


def ring(net, size: int) -> list[tuple[str, str]]:
    """Members p0, p1, ... dialled into a ring, converged; returns its links."""
    names = [f"p{i}" for i in range(size)]
    for n in names:
        net.add_member(n)
    links = [tuple(sorted((names[i], names[(i + 1) % size]))) for i in range(size)]
    for a, b in links:
        net.connect(a, b)
    wait(net, links)
    return links


def test_ring_of_processes_relays_and_survives_sigkill(net):
    links = ring(net, 5)
    assert len({w.proc.pid for w in net.workers.values()}) == 5
    msg_id = net.members["p0"].send("p2", b"between processes")
    deadline = time.monotonic() + 5
    while not any(
        e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id for e in list(net.tracer.events)
    ):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    path = next(
        e.fields["path"]
        for e in net.tracer.events
        if e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id
    )
    assert path == ["p0", "p1", "p2"]
    net.crash("p1")  # SIGKILL
    links = [x for x in links if "p1" not in x]
    wait(net, links)
    assert net.call(lambda: net.members["p0"].routes["p2"].next_hop) == "p4"


@pytest.mark.parametrize(
    "security", ["open", pytest.param("tls", marks=pytest.mark.slow)], ids=["open", "tls"]
)
def test_multi_process_mode_agrees_with_simulation(security):
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    if security == "tls":
        scenario = dataclasses.replace(scenario, security="signed", tls=True)
    before = children()
    proc = run(scenario, "proc")
    assert children() == before
    comparison = compare_results(run(scenario, "sim"), proc)
    assert comparison["routing_tables_identical"] and proc.ok


def test_members_sharing_processes_fail_and_come_back_on_their_own():
    """Three members to a process: a member's crash, power-off and pause are its own (emulated
    in its process), not its process-mates'; its restart is a new life in the same process."""
    before = children()
    with ProcessNetwork(seed=2, config=FAST, members_per_process=3) as net:
        links = ring(net, 6)
        pids = {m: w.proc.pid for m, w in net.workers.items()}
        assert len(set(pids.values())) == 2 and pids["p0"] == pids["p2"] != pids["p3"]
        net.crash("p1")
        net.power_off("p4")  # found by keepalive only
        alive = [x for x in links if "p1" not in x and "p4" not in x]
        wait(net, alive)
        net.restart("p1", join=["p0", "p2"])
        wait(net, [*alive, ("p0", "p1"), ("p1", "p2")])
        assert net.workers["p1"].proc.pid == pids["p1"]
        assert net.incarnations["p1"] == 2
        net.pause("p0")
        assert net.resume("p0").chunks_held >= 0
        assert {w.proc.poll() for w in net.workers.values()} == {None}
    assert children() == before


@pytest.mark.slow
def test_members_sharing_processes_agree_with_simulation():
    scenario = load_scenario(ROOT / "scenarios" / "ring-failover.yaml")
    proc = run(scenario, "proc", members_per_process=2)  # crash, restart, join, leave in it
    comparison = compare_results(run(scenario, "sim"), proc)
    assert comparison["routing_tables_identical"] and proc.ok, proc.warnings
