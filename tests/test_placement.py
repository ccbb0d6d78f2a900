"""Members across machines (issue 20, item 5): the proc backend's member processes placed on
Dask workers, a LocalCluster of worker processes standing in for the machines."""

import os
import signal

import pytest

from peerlab.campaign.execute import local_cluster
from peerlab.cli import main
from peerlab.compare import compare_results
from peerlab.errors import PeerlabError
from peerlab.realnet.placement import DaskPlacement, run_member
from peerlab.runner import run

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with local_cluster(3) as cluster, Client(cluster) as client:
        yield client


def member_processes() -> list[int]:
    """The pids of every member worker process on this machine."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"peerlab.realnet.worker" in f.read():
                    pids.append(int(pid))
        except OSError:
            pass  # gone meanwhile
    return pids


def test_members_on_three_workers_agree_with_the_simulation(client):
    placement = DaskPlacement(client)
    proc = run("ring-failover", "proc", placement=placement)  # a crash and a restart in it
    sim = run("ring-failover", "sim")
    comparison = compare_results(sim, proc)
    assert comparison["routing_tables_identical"], comparison["members_with_different_tables"]
    assert proc.ok, proc.expectations
    assert {placement.worker_of(m) for m in proc.members} == set(client.run(os.getpid))
    assert not member_processes()  # every member's process ended with the run


def test_a_member_task_passes_signals_on_and_ends_with_its_process(client):
    from distributed import Queue

    signals = Queue("peerlab-test-signals", client=client)
    cmd = ["python3", "-c", "import time; time.sleep(30)"]
    future = client.submit(run_member, cmd, {}, signals.name, pure=False)
    signals.put(int(signal.SIGTERM))
    assert future.result(timeout=20) == -signal.SIGTERM


def test_placement_is_for_the_proc_backend_only(client):
    with pytest.raises(PeerlabError, match="proc backend"):
        run("quickstart", "sim", placement=DaskPlacement(client))


@pytest.mark.slow
def test_the_command_line_places_members_and_refuses_other_backends(capsys):
    assert main(["-q", "run", "quickstart", "--backend", "proc", "--workers", "2"]) == 0
    assert main(["-q", "run", "quickstart", "--workers", "2"]) == 2
    assert "--backend proc" in capsys.readouterr().err
