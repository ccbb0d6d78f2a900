import json
from pathlib import Path

import pytest

from peerlab.cli import main
from peerlab.errors import PeerlabError
from peerlab.sweep import parse_seeds, sweep

ROOT = Path(__file__).resolve().parent.parent


def test_parse_seeds():
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(PeerlabError, match="expected numbers like 1-10"):
        parse_seeds("a-b")


def test_sweep_runs_every_scenario_and_seed_in_parallel():
    paths = [str(ROOT / "scenarios" / "line.yaml"), str(ROOT / "scenarios" / "churn.yaml")]
    rows = sweep(paths, [1, 2, 3], jobs=2)
    assert [(r["scenario"], r["seed"]) for r in rows] == [
        (name, seed) for name in ("line", "churn") for seed in (1, 2, 3)
    ]
    assert all(r["ok"] for r in rows)


def test_sweep_command(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert (
        main(
            [
                "sweep",
                str(ROOT / "scenarios" / "quickstart.yaml"),
                "--seeds",
                "1-2",
                "--jobs",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "2/2 runs met their expectations" in capsys.readouterr().out
    assert [r["seed"] for r in json.loads(out.read_text())] == [1, 2]
    assert main(["sweep", str(ROOT / "tests" / "bad_scenarios" / "self_link.yaml")]) == 2
