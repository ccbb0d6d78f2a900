"""peerlab explore: random fault schedules in the simulator, invariants, determinism, shrinking."""

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from planted import NoFightBack, Unseeded

import peerlab
from peerlab.cli import main
from peerlab.errors import PeerlabError
from peerlab.explorer import CHECKED, DETERMINISM, base_of, explore
from peerlab.schedules import FAULT_KINDS, Base, Schedule, Step, _State, generate
from peerlab.shrink import shrink

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "scenarios" / "grid.yaml"
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def test_the_real_member_holds_every_invariant_on_the_suite_seeds(tmp_path):
    for source, seeds in ((QUICKSTART, range(1, 16)), (GRID, range(1, 16))):
        report = explore(source, seeds=seeds, out=tmp_path)
        assert report.failures == [], [(f.seed, f.violations) for f in report.failures]
        assert report.seeds == list(seeds)
        assert report.checked == {name: len(seeds) for name in CHECKED}
    assert list(tmp_path.iterdir()) == []  # nothing to reproduce


def test_a_planted_bug_is_found_and_shrunk_to_a_scenario_that_reproduces_it(tmp_path, capsys):
    report = explore(QUICKSTART, seeds=range(1, 21), out=tmp_path, member_class=NoFightBack)
    assert report.failures, "the planted bug went unnoticed"
    failure = min(report.failures, key=lambda f: f.shrunk)
    members, events = failure.shrunk
    assert failure.shrunk < failure.original and events <= 6 and members <= 4
    assert failure.invariant == "tables"
    doc = yaml.safe_load(failure.path.read_text())
    assert "violates tables" in doc["description"] and doc["expect"]["invariants"] is True
    # the written scenario is an ordinary one: a run of it fails with the bug, passes without
    assert not peerlab.run(failure.path, member_class=NoFightBack).ok
    assert peerlab.run(failure.path).ok
    assert main(["run", str(failure.path), "--quiet", "--member-class", "planted:NoFightBack"]) == 1
    assert re.search(r"^invariant tables +FAIL ", capsys.readouterr().out, re.M)
    assert main(["run", str(failure.path), "--quiet"]) == 0


def test_a_member_that_draws_unseeded_randomness_fails_determinism(tmp_path):
    report = explore(QUICKSTART, seeds=[1], out=None, member_class=Unseeded)
    assert [f.invariant for f in report.failures] == [DETERMINISM]
    assert "left different traces" in report.failures[0].violations[0].detail


def test_the_explore_command_prints_a_table_and_exits_by_what_it_found(tmp_path, capsys):
    assert main(["explore", str(QUICKSTART), "--seeds", "1-3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "seeds run" in out and "3" in out and "tables" in out and "no failures" in out
    code = main(
        [
            "explore",
            str(QUICKSTART),
            "--seeds",
            "1-20",
            "--out",
            str(tmp_path),
            "--member-class",
            "planted:NoFightBack",
            "--faults",
            "crash,link_down",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    written = sorted(tmp_path.glob("*.yaml"))
    assert written and str(written[0]) in out and "peerlab run" in out


def test_bad_explore_input_is_a_clear_error(capsys):
    with pytest.raises(PeerlabError, match=r"unknown fault kind.*teleport"):
        explore(QUICKSTART, seeds=[1], faults=["crash", "teleport"], out=None)
    assert main(["explore", str(QUICKSTART), "--budget", "soon"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_a_topology_file_is_a_base_too():
    base = base_of(ROOT / "scenarios" / "topologies" / "abilene.gml")
    assert len(base.members) == 11 and len(base.links) == 14


BASE = Base.of(peerlab.load_scenario(GRID))


@settings(max_examples=60)
@given(st.integers(0, 10**6), st.sets(st.sampled_from(FAULT_KINDS), min_size=1))
def test_every_schedule_is_a_valid_scenario_that_ends_with_every_fault_undone(seed, faults):
    schedule = generate(BASE, seed, faults=faults)
    assert generate(BASE, seed, faults=faults) == schedule  # a seed gives one schedule
    scenario = schedule.scenario()  # validates
    doc = schedule.document()
    state = _State(BASE)
    for event in doc["events"]:
        ((kind, value),) = ((k, v) for k, v in event.items() if k != "at")
        step = Step(event["at"], kind, value)
        assert state.allows(step), step
        state.apply(step)
    assert not (state.paused or state.down or state.cut or state.partitioned)
    assert scenario.end_time == schedule.faults_end + 1.0 + schedule.quiet
    used = {e.kind for e in scenario.events} - {"traffic", "link_up", "heal", "resume", "restart"}
    assert used <= {k.replace("_one_way", "") for k in faults}


def test_shrinking_keeps_what_the_failure_needs_and_drops_the_rest():
    schedule = generate(BASE, 7, events=30)
    crash = next(s for s in schedule.steps if s.kind in ("crash", "power_off"))
    victim = crash.value

    def still_fails(candidate: Schedule) -> bool:  # "fails" while that crash is in it
        return any(s == crash for s in candidate.steps) and victim in candidate.base.members

    small = shrink(schedule, still_fails)
    assert small.steps == (crash,)
    assert victim in small.base.members and len(small.base.members) == 2
    assert small.base.links == ()


@pytest.mark.slow
def test_the_real_member_holds_every_invariant_over_hundreds_of_seeds(tmp_path):
    report = explore(GRID, seeds=range(1, 301), out=tmp_path)
    assert report.failures == [], [(f.seed, f.violations, f.path) for f in report.failures]
