"""``peerlab sweep``: scenario files x seeds, run as a campaign whose one column is the file."""

from pathlib import Path

import pytest

from peerlab.campaign import parse_seeds, read_table
from peerlab.cli import main
from peerlab.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent


def test_parse_seeds():
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="expected seeds like 1-10"):
        parse_seeds("a-b")
    with pytest.raises(ValueError, match="seed 2 is there twice"):
        parse_seeds("1-3,2")


def test_sweep_runs_every_scenario_and_seed_once(tmp_path):
    paths = [str(ROOT / "scenarios" / "line.yaml"), str(ROOT / "scenarios" / "churn.yaml")]
    rows = sweep(paths, [1, 2, 3], tmp_path, serial=True)
    assert [(Path(r["scenario"]).stem, r["seed"]) for r in rows] == [
        (name, seed) for name in ("line", "churn") for seed in (1, 2, 3)
    ]
    assert all(r["ok"] for r in rows)
    assert sweep(paths[:1], [1, 2, 3], tmp_path, serial=True) == rows[:3]  # kept, not rerun


def test_sweep_command(tmp_path, capsys):
    out = tmp_path / "sweep"
    scenario = str(ROOT / "scenarios" / "quickstart.yaml")
    command = ["sweep", scenario, "--seeds", "1-2", "--serial", "--out", str(out), "--quiet"]
    assert main(command) == 0
    shown = capsys.readouterr().out
    assert "2/2 runs met their expectations" in shown
    assert [r["seed"] for r in read_table(out).rows] == [1, 2]
    bad = str(ROOT / "tests" / "bad_scenarios" / "self_link.yaml")
    assert main(["sweep", bad, "--out", str(tmp_path / "never")]) == 2
    assert not (tmp_path / "never").exists()  # refused before anything was made
    assert main(["sweep", scenario, "--seeds", "2-1"]) == 2
    assert "--seeds: '2-1' is an empty range of seeds" in capsys.readouterr().err
