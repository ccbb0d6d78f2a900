"""The run timeline in the results: what held at any instant, read from the results alone."""

import json
import pickle
from pathlib import Path

import pytest

from peerlab.errors import ResultsError, UnknownMember
from peerlab.results import SCHEMA_VERSION, RunResult
from peerlab.routing import next_hops
from peerlab.runner import run
from peerlab.timeline import DUPLICATE, ViewRecorder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ring():
    return run(ROOT / "scenarios" / "ring-failover.yaml", "sim")


def settled_instants(result):
    """Instants at which the network had converged: a little after each window converged."""
    windows = result.convergence
    for c, following in zip(windows, [*windows[1:], None], strict=True):
        end = following["at"] if following else result.duration
        if c["converged_at"] is not None and c["converged_at"] + 0.05 < end:
            yield c["converged_at"] + 0.05


def test_the_timeline_replays_to_the_final_tables_and_views(ring):
    for member in ring.members:
        assert ring.table_at(member, ring.duration) == ring.routing_tables[member]
        assert ring.view_at(member, ring.duration) == {tuple(x) for x in ring.views[member]}
    assert ring.links_at(ring.duration) == [tuple(x) for x in ring.final_links]
    assert ring.members_at(ring.duration) == ring.members


def test_at_every_settled_instant_tables_are_bfs_and_views_are_the_truth(ring):
    instants = list(settled_instants(ring))
    assert len(instants) >= 8
    for t in instants:
        links = ring.links_at(t)
        adjacency: dict[str, set[str]] = {m: set() for m in ring.members_at(t)}
        for a, b in links:
            adjacency[a].add(b)
            adjacency[b].add(a)
        for member in adjacency:
            expected = {d: r._asdict() for d, r in next_hops(adjacency, member).items()}
            assert ring.table_at(member, t) == expected, (member, t)
            assert ring.view_at(member, t) == set(links), (member, t)


def test_links_follow_the_scenario_with_their_causes(ring):
    assert ("a", "b") not in ring.links_at(3.0) and ("a", "b") in ring.links_at(4.5)
    assert ("b", "c") not in ring.links_at(9.8) and ("c", "f") not in ring.links_at(9.8)
    assert {("b", "c"), ("c", "f")} <= set(ring.links_at(10.5))
    rows = ring.timeline["links"]
    down = {(a, b): cause for t, a, b, up, cause in rows if not up and 9 < t < 10}
    assert set(down) == {("b", "c"), ("c", "f")}
    assert all(cause.startswith("keepalive timeout") for cause in down.values())
    assert [cause for t, a, b, up, cause in rows if (a, b) == ("a", "b") and 2 <= t < 5] == [
        "link down",
        "link_up a-b",
    ]


def test_members_come_and_go_and_a_member_down_has_no_table(ring):
    assert "d" not in ring.members_at(5.5) and "d" in ring.members_at(6.5)
    assert "f" not in ring.members_at(6.9) and "e" not in ring.members_at(8.5)
    with pytest.raises(UnknownMember, match=r"'d' was not running at 5.5s of 'ring-failover'"):
        ring.table_at("d", 5.5)
    assert ring.table_at("d", 6.0) == {}  # restarted with no memory
    assert ring.table_at("d", 7.0)["a"]["hops"] == 2


def test_a_duplicate_connection_closed_is_no_link_going_down(ring):
    # d's restart: d dials its peers as the runner has them dial d, and one of each pair goes
    duplicates = [
        e for e in ring.trace if e.kind == "disconnect" and e.fields["reason"] == DUPLICATE
    ]
    assert {e.member for e in duplicates} & {"c", "d", "e"}
    downs = [row[:3] for row in ring.timeline["links"] if not row[3]]
    for e in duplicates:
        assert not [d for d in downs if abs(d[0] - e.time) < 0.01], (e, downs)


def test_views_are_left_out_above_the_limit_and_say_so(ring):
    recorder = ViewRecorder(members=300, limit=250)
    recorder.observe({}, 1.0)
    assert recorder.omitted == "not recorded above 250 members (this run had 300)"
    data = ring.to_dict()
    data["timeline"]["omitted"] = {"views": recorder.omitted}
    data["timeline"]["views"] = {}
    big = RunResult.from_dict(data)
    with pytest.raises(ResultsError, match="views of 'ring-failover' were not recorded above 250"):
        big.view_at("a", 1.0)
    assert big.table_at("a", 1.0) == ring.table_at("a", 1.0)


def test_results_without_a_timeline_or_of_another_schema_are_refused(ring, tmp_path):
    data = ring.to_dict()
    data["timeline"] = None
    with pytest.raises(ResultsError, match="hold no timeline, so nothing can be said of any"):
        RunResult.from_dict(data).links_at(1.0)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**ring.to_dict(), "schema": 1}))
    with pytest.raises(
        ResultsError,
        match=rf"old.json: results with schema version 1; this "
        rf"peerlab reads version {SCHEMA_VERSION}",
    ):
        RunResult.read(old)
    data = ring.to_dict()
    del data["schema"]
    old.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="results with no schema version"):
        RunResult.read(old)


def test_the_timeline_survives_writing_reading_and_pickling(ring, tmp_path):
    path = tmp_path / "r.json"
    ring.write(path)
    back = RunResult.read(path)
    assert back == ring and back.table_at("c", 3.0) == ring.table_at("c", 3.0)
    assert pickle.loads(pickle.dumps(back)).links_at(9.8) == ring.links_at(9.8)


def test_message_hop_times_follow_each_path(ring):
    for message, times in zip(ring.messages, ring.timeline["hops"], strict=True):
        assert times == sorted(times) and times[0] == message["sent_at"]
        if message["delivered_at"] is not None:
            assert len(times) == len(message["path"]) and times[-1] == message["delivered_at"]


def test_the_repr_of_a_big_run_is_short():
    result = run("random-200", "sim")
    assert len(repr(result)) < 200
    assert repr(result).startswith("<RunResult 'random-200' on sim (seed 8): 199 members")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["real", "proc"])
def test_a_real_run_keeps_a_timeline_too(backend):
    result = run("quickstart", backend)
    for member in result.members:
        assert result.table_at(member, result.duration) == result.routing_tables[member]
    assert ("c", "d") in result.links_at(0.9) and ("c", "d") not in result.links_at(1.5)
    if backend == "proc":  # members live in other processes: their views cannot be sampled
        assert result.timeline["omitted"] == {
            "views": "not observable when members run in other processes"
        }
    else:
        assert result.view_at("a", result.duration) == {tuple(x) for x in result.views["a"]}
