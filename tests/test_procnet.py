"""Members as separate OS processes on loopback (the real backend's multi-process mode)."""

import dataclasses
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from waiting import eventually

from peerlab import trace as ev
from peerlab.compare import compare_results
from peerlab.member import MemberConfig
from peerlab.oracle import table_errors
from peerlab.realnet.forkserver import ForkServer
from peerlab.realnet.placement import LocalPlacement
from peerlab.realnet.procnet import ProcessNetwork
from peerlab.realnet.worker import SECRET_ENV
from peerlab.runner import run
from peerlab.scenario import load_scenario
from peerlab.trace import Tracer

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
        net.pause("p0")  # its peers find it silent; its process-mate p2 keeps its links

        def neighbours(m):
            return net.call(lambda: net.members[m].neighbours)

        eventually(lambda: "p0" not in neighbours("p1") + neighbours("p5"), "p0 found silent")
        assert sorted(neighbours("p2")) == ["p1", "p3"]
        assert net.resume("p0").chunks_held > 0  # its keepalive ticks waited for it
        assert {w.proc.poll() for w in net.workers.values()} == {None}
    assert children() == before


@pytest.mark.slow
def test_members_sharing_processes_agree_with_simulation():
    scenario = load_scenario(ROOT / "scenarios" / "ring-failover.yaml")
    proc = run(scenario, "proc", members_per_process=2)  # crash, restart, join, leave in it
    comparison = compare_results(run(scenario, "sim"), proc)
    assert comparison["routing_tables_identical"] and proc.ok, proc.warnings


def test_the_fork_server_starts_workers_and_reports_how_they_end():
    before = children()
    server = ForkServer()
    try:
        assert server.start(["--no-such-option"], {}).wait(10) == 2  # argparse's usage error
        with socket.create_server(("127.0.0.1", 0)) as control:
            address = f"127.0.0.1:{control.getsockname()[1]}"
            worker = server.start(["--name", "w", "--control", address], {SECRET_ENV: "s"})
            sock, _ = control.accept()  # it called back: it runs, and waits for commands
            with sock:
                assert worker.poll() is None and worker.pid not in children()  # the server's
                worker.send_signal(signal.SIGKILL)
                assert worker.wait(10) == -signal.SIGKILL
    finally:
        server.close()
    assert children() == before


def test_a_view_that_changes_without_a_route_change_reaches_the_parent():
    """b-c goes down in a triangle: a's routes stay (b and c are its neighbours), its view
    does not."""
    with ProcessNetwork(seed=2, config=FAST, members_per_process=3) as net:
        for m in "abc":
            net.add_member(m)
        for x, y in [("a", "b"), ("b", "c"), ("a", "c")]:
            net.connect(x, y)

        def view():
            return net.call(lambda: net.members["a"].view())

        eventually(lambda: view() == {("a", "b"), ("a", "c"), ("b", "c")}, "a's view: triangle")
        net.link_down("b", "c")
        eventually(lambda: view() == {("a", "b"), ("a", "c")}, "a's view without b-c")


def test_a_command_that_fails_is_reported_and_the_worker_goes_on(net):
    links = ring(net, 3)
    with pytest.raises(RuntimeError, match=r"worker w0: 'send': LocalProtocolError: refusing"):
        net.members["p0"].send("p1", bytes(8 << 20))
    assert net.members["p0"].send("p1", b"small")
    wait(net, links)


def test_members_share_processes_only_where_addresses_tell_them_apart():
    class OtherHosts(LocalPlacement):
        remote = True  # members would listen on their worker's host

    with pytest.raises(ValueError, match="would share its address"):
        ProcessNetwork(members_per_process=2, placement=OtherHosts())
    scenario = load_scenario(ROOT / "scenarios" / "random-200.yaml")
    config, tracer = MemberConfig(), Tracer()
    shared = ProcessNetwork.for_scenario(scenario, config=config, tracer=tracer)
    apart = ProcessNetwork.for_scenario(
        scenario, config=config, tracer=tracer, placement=OtherHosts()
    )
    with shared, apart:
        assert (shared.members_per_process, apart.members_per_process) == (13, 1)
