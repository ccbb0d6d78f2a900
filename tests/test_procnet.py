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


def test_ring_of_processes_relays_and_survives_sigkill(net):
    names = [f"p{i}" for i in range(5)]
    for n in names:
        net.add_member(n)
    links = [tuple(sorted((names[i], names[(i + 1) % 5]))) for i in range(5)]
    for a, b in links:
        net.connect(a, b)
    wait(net, links)
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
