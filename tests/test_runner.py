import dataclasses
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.cli import main
from peerlab.compare import compare_results
from peerlab.errors import UnknownMember
from peerlab.results import RunResult
from peerlab.runner import run
from peerlab.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
SMALL = [p for p in SCENARIOS if p.stem != "random-200"]


def test_issue_example_runs_as_written_and_holds():
    result = run(ROOT / "scenarios" / "ring-failover.yaml", "sim")
    assert result.ok, result.expectations
    assert [e["name"] for e in result.expectations] == ["delivered", "routes", "converged_within"]
    first = next(m for m in result.messages if m["src"] == "a" and m["dst"] == "c")
    assert first["path"] == ["a", "b", "c"]
    detour = [m for m in result.messages if m["src"] == "a" and m["dst"] == "c"][1]
    assert detour["path"] == ["a", "e", "d", "c"]  # a-b is down at 3s
    assert sorted(result.members) == ["a", "b", "c", "d", "f"]
    assert ["a", "f"] in result.final_links and ["b", "c"] in result.final_links


@pytest.mark.parametrize("security", ["open", "signed"])
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_reference_scenarios_hold_in_sim(path, security):
    result = run(dataclasses.replace(load_scenario(path), security=security), "sim")
    assert result.ok, result.expectations
    assert not result.warnings
    assert all(c["status"] != "not_converged" for c in result.convergence)


def secured(scenario, security: str):
    """``scenario`` open, signed (secure mode) or "tls" (secure mode with TLS on real links)."""
    mode = "open" if security == "open" else "signed"
    return dataclasses.replace(scenario, security=mode, tls=security == "tls")


def _in_every_mode(paths: list[Path], fast_signed: set[str], fast_tls: set[str]) -> list:
    """Each scenario open, signed and with TLS: the secure runs of those not in ``fast_signed``
    or ``fast_tls`` in the slow suite."""
    params = [pytest.param(p, "open", id=p.stem) for p in paths]
    for security, fast in (("signed", fast_signed), ("tls", fast_tls)):
        for p in paths:
            marks = () if p.stem in fast else (pytest.mark.slow,)
            params.append(pytest.param(p, security, id=f"{p.stem}-{security}", marks=marks))
    return params


@pytest.mark.parametrize(
    ("path", "security"),
    _in_every_mode(SMALL, {"quickstart", "ring-failover", "restart-new-life"}, {"quickstart"}),
)
def test_reference_scenarios_agree_between_worlds(path, security):
    scenario = secured(load_scenario(path), security)
    sim, real = run(scenario, "sim"), run(scenario, "real")
    comparison = compare_results(sim, real)
    assert comparison["routing_tables_identical"], comparison["members_with_different_tables"]
    assert comparison["agree"]
    assert real.ok, real.expectations
    assert sim.final_links == real.final_links
    assert ("TLS is real-only" in " ".join(sim.warnings)) == (security == "tls")


@pytest.mark.slow
@pytest.mark.parametrize("security", ["open", "signed"])
def test_large_reference_scenario_agrees_between_worlds(security):
    scenario = load_scenario(ROOT / "scenarios" / "random-200.yaml")
    scenario = dataclasses.replace(scenario, security=security)
    comparison = compare_results(run(scenario, "sim"), run(scenario, "real"))
    assert comparison["agree"] and comparison["routing_tables_identical"]


def test_same_seed_same_result_and_seed_override():
    a = run(ROOT / "scenarios" / "churn.yaml", "sim")
    b = run(ROOT / "scenarios" / "churn.yaml", "sim")
    assert a.to_dict() | {"wall_time": 0} == b.to_dict() | {"wall_time": 0}
    c = run(ROOT / "scenarios" / "churn.yaml", "sim", seed=99)
    assert c.seed == 99 and c.messages != a.messages


def test_failed_expectation_exits_1_and_is_named(tmp_path, capsys):
    bad = tmp_path / "strict.yaml"
    bad.write_text("""
name: strict
members: [a, b, c]
topology: {links: [[a, b], [b, c]]}
events:
  - {at: 0.5s, link_down: [b, c]}
  - {at: 1s, send: {from: a, to: c}}
expect: {delivered: all}
""")
    assert main(["run", str(bad), "--quiet"]) == 1
    out = capsys.readouterr().out
    row = "delivered     FAIL    0/1 delivered (0.0%), need 100.0%; drops: no_route x1"
    assert row in out.splitlines()


def test_results_json_contract(tmp_path):
    out, trace = tmp_path / "r.json", tmp_path / "t.jsonl"
    code = main(
        [
            "run",
            str(ROOT / "scenarios" / "quickstart.yaml"),
            "--out",
            str(out),
            "--trace",
            str(trace),
            "--quiet",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    for key in (
        "scenario",
        "backend",
        "seed",
        "members",
        "final_links",
        "routing_tables",
        "messages",
        "convergence",
        "expectations",
        "counters",
    ):
        assert key in data
    msg = data["messages"][0]
    assert set(msg) == {
        "id",
        "src",
        "dst",
        "sent_at",
        "delivered_at",
        "path",
        "drop_reason",
        "reliable",
        "acked_at",
        "deliveries",
    }
    table = data["routing_tables"]["a"]
    assert table["b"] == {"next_hop": "b", "hops": 1}
    assert set(data["convergence"][0]) >= {"event", "at", "converged_at"}
    assert data["counters"]["frames"]["data"] > 0 and data["counters"]["bytes"]["adverts"] > 0
    result = RunResult.read(out)
    assert result == RunResult.from_dict(data)  # the typed read and the plain one agree
    assert result.to_networkx().number_of_edges() == len(data["final_links"])
    assert result.table("a") == table
    with pytest.raises(UnknownMember, match="no member 'zz' at the end of 'quickstart'"):
        result.table("zz")
    lines = trace.read_text().splitlines()
    assert lines and all(json.loads(line)["kind"] for line in lines)


def test_compare_command_writes_both_formats(tmp_path, capsys):
    stem = tmp_path / "cmp"
    assert (
        main(["compare", str(ROOT / "scenarios" / "line.yaml"), "--out", str(stem), "--quiet"]) == 0
    )
    text = capsys.readouterr().out
    assert "AGREE" in text and "routing tables identical   yes" in text.splitlines()
    data = json.loads(stem.with_suffix(".json").read_text())
    assert data["agree"] and data["paths_identical"]
    written = [line for line in stem.with_suffix(".txt").read_text().splitlines() if line]
    assert written[-2:] == [data["verdict"], data["timing_verdict"]]
    assert data["backend"] == "real" and (tmp_path / "cmp-real.json").exists()


def test_compare_holds_the_simulation_to_the_proc_backend_too(tmp_path, capsys):
    stem = tmp_path / "cmp"
    line = str(ROOT / "scenarios" / "line.yaml")
    assert main(["compare", line, "--backend", "proc", "--out", str(stem), "--quiet"]) == 0
    assert "AGREE: identical routing tables in sim and proc" in capsys.readouterr().out
    data = json.loads(stem.with_suffix(".json").read_text())
    assert data["backend"] == "proc" and data["agree"]
    assert RunResult.read(tmp_path / "cmp-proc.json").backend == "proc"


def test_compare_reports_disagreement():
    scenario = load_scenario(ROOT / "scenarios" / "line.yaml")
    sim = run(scenario, "sim")
    other = RunResult.from_dict(sim.to_dict())
    other.routing_tables["n0"] = {}
    comparison = compare_results(sim, other)
    assert not comparison["agree"] and comparison["members_with_different_tables"] == ["n0"]
    assert comparison["verdict"].startswith("DISAGREE")


def test_compare_gives_no_timing_verdict_on_a_run_that_fell_behind():
    sim = run(load_scenario(ROOT / "scenarios" / "line.yaml"), "sim")
    assert sim.timing_ok and sim.timing["worst"] is None
    assert compare_results(sim, sim)["latency_error"] == {"median": 0.0, "p99": 0.0}
    late = RunResult.from_dict(sim.to_dict())
    late.timing_ok = False
    late.timing["worst"] = "event crash n2 at 1s was applied 300 ms late"
    comparison = compare_results(sim, late)
    assert comparison["agree"] and comparison["latency_error"] is None
    assert comparison["timing_verdict"].startswith("NO TIMING VERDICT")
    assert "crash n2 at 1s was applied 300 ms late" in comparison["timing_verdict"]


def test_demo_runs_compare_on_quickstart(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "scenario quickstart: real vs sim" in out and "AGREE" in out
    assert (tmp_path / "out" / "compare-quickstart.json").exists()
    assert "picture of the real run written to out/quickstart.png" in out
    assert (tmp_path / "out" / "quickstart.png").stat().st_size > 10_000


def test_unknown_backend_is_bad_input():
    from peerlab.errors import PeerlabError

    with pytest.raises(PeerlabError, match="unknown backend 'ns3'"):
        run(ROOT / "scenarios" / "line.yaml", "ns3")


def test_a_silent_cut_is_not_judged_converged_before_anyone_notices(tmp_path):
    """After a silent cut nobody's table changes until the keepalive notices, so convergence is
    dated from when the tables became right again, not from the cut."""
    path = tmp_path / "cut.yaml"
    path.write_text(
        "name: cut\nseed: 1\nmembers: [a, b, c, d]\n"
        "topology: {links: [[a, b], [b, c], [c, d], [d, a]]}\n"
        "events: [{at: 1s, link_cut: [a, b]}]\n"
        "expect: {routes: shortest, converged_within: 2s}\nsettle: 2s\n"
    )
    result = run(path, "sim")
    assert result.ok, result.expectations
    cut = next(c for c in result.convergence if c["event"].startswith("link_cut"))
    took = cut["converged_at"] - cut["at"]
    assert 0.3 <= took <= 1.5, cut  # scenario members: 0.15 s keepalive, 0.6 s dead timeout


def test_results_json_has_one_line_per_member_or_item():
    """Large runs hold millions of routes: the file keeps each table and each message on one
    line instead of spreading every route over several, and reads back to the same contract."""
    result = run(ROOT / "scenarios" / "line.yaml", "sim")
    text = result.to_json()
    assert json.loads(text) == result.to_dict()
    data = result.to_dict()
    items = sum(len(v) for v in data.values() if isinstance(v, list | dict) and v)
    containers = sum(1 for v in data.values() if isinstance(v, list | dict) and v)
    assert len(text.splitlines()) == 2 + len(data) + items + containers
    table = json.dumps(data["routing_tables"]["n0"], sort_keys=True, separators=(", ", ": "))
    assert f'  "n0": {table},' in text.splitlines()


def test_a_closed_output_pipe_ends_the_command_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        out = subprocess.run(
            [sys.executable, "-m", "peerlab.cli", "check", "scenarios/line.yaml"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=Path(__file__).parent.parent,
        )
    finally:
        os.close(write_end)
    assert out.returncode == 141
    assert out.stderr == ""


def test_the_cycle_collector_is_held_off_for_a_run_and_restored():
    seen: list[bool] = []
    assert gc.isenabled()
    quickstart = str(ROOT / "scenarios" / "quickstart.yaml")
    run(quickstart, "sim", progress=lambda *_: seen.append(gc.isenabled()))
    assert seen and not any(seen)
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read results: No such file or directory"),
        ("xx", "not a peerlab results file: JSON is malformed"),
        ("[1]", "not a peerlab results file: expected a JSON object, got list"),
        ('{"scenario": "x"}', "not a peerlab results file: missing keys: backend, seed, members"),
        (
            '{"scenario": "x", "backend": "sim", "seed": 1, "members": "a b", "final_links": [],'
            ' "routing_tables": {}, "messages": [], "convergence": [], "expectations": [],'
            ' "counters": {}, "duration": 1.0, "wall_time": 0.1}',
            "not a peerlab results file: Expected `array`, got `str` - at `$.members`",
        ),
    ],
)
def test_a_bad_results_file_is_named_with_what_is_wrong(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["plot", str(path), "-o", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err
    assert f"peerlab: error: {path}: {message}" in err


@pytest.mark.parametrize(
    "command, message",
    [
        (["run", "SCENARIO", "--out", "FILE/r.json"], "--out: cannot write 'FILE/r.json'"),
        (["run", "SCENARIO", "--trace", "DIR"], "--trace: cannot write 'DIR': it is a directory"),
        (["plot", "SCENARIO", "-o", "FILE/p.png"], "-o: cannot write 'FILE/p.png'"),
        (["sweep", "SCENARIO", "--seeds", "1", "--out", "FILE/s"], "--out: cannot write 'FILE/s"),
        (["campaign", "run", "CAMPAIGN", "--out", "FILE/c"], "--out: cannot write 'FILE/c"),
        (["compare", "SCENARIO", "--out", "FILE/c"], "--out: cannot write 'FILE/c'"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    tmp_path, capsys, command, message
):
    blocker = tmp_path / "a-file"  # a path under a regular file cannot be made
    blocker.write_text("")
    names = {
        "SCENARIO": ROOT / "scenarios" / "line.yaml",
        "CAMPAIGN": ROOT / "tests" / "campaigns" / "grid.yaml",
        "FILE": blocker,
        "DIR": tmp_path,
    }

    def fill(text: str) -> str:
        for name, value in names.items():
            text = text.replace(name, str(value))
        return text

    assert main([*map(fill, command), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert f"peerlab: error: {fill(message)}" in err
    assert "scenario" not in out  # nothing ran


def test_sweep_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(ROOT / "scenarios" / "line.yaml"), "--workers", "0"])
    assert info.value.code == 2
    assert "--workers: expected a positive integer, got '0'" in capsys.readouterr().err


def test_the_runner_handles_every_event_kind_a_scenario_may_hold():
    from peerlab.scenario import EVENT_KINDS
    from peerlab.truth import Director

    assert set(Director.HANDLERS) == set(EVENT_KINDS)
