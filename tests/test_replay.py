"""Record a real run and replay it in the simulator (issue 19, item 4)."""

import json

import pytest

from peerlab.cli import main
from peerlab.replay import as_applied, read_recording
from peerlab.runner import run


def test_a_recorded_real_run_replays_in_sim_with_the_same_deliveries_and_paths(tmp_path, capsys):
    recording, report = tmp_path / "run.json", tmp_path / "divergence.json"
    assert main(["-q", "run", "quickstart", "--backend", "real", "--record", str(recording)]) == 0
    scenario, real = read_recording(recording)
    assert real.backend == "real" and scenario.name == "quickstart"
    moved = as_applied(scenario, real)
    applied = sorted(e["applied_at"] for e in real.events)
    assert sorted(e.at for e in moved.events) == applied  # the events at their real times
    measured = {"-".join(link.pair): link.params.latency for link in moved.links}
    assert real.link_delays and all(measured[k] == d for k, d in real.link_delays.items())
    assert main(["replay", str(recording), "--out", str(report)]) == 0
    assert "quickstart on real, replayed in sim" in capsys.readouterr().out
    found = json.loads(report.read_text())
    assert found["same_delivered"] and not found["different_paths"]
    assert found["delivered_in_both"] == len(real.delivered) == 22
    delivered = [m for m in found["messages"] if m["real"] == "delivered"]
    assert all("latency_error" in m for m in delivered)  # a latency error per message
    assert found["latency_error"]["median"] is not None


def test_bad_recordings_and_sim_runs_are_refused(tmp_path, capsys):
    not_one = tmp_path / "x.json"
    not_one.write_text('{"scenario": "quickstart"}')
    assert main(["-q", "replay", str(not_one)]) == 2
    assert "not a recording of version 1" in capsys.readouterr().err
    assert main(["-q", "run", "quickstart", "--record", str(tmp_path / "r.json")]) == 2
    assert "a recording is of a real or proc run" in capsys.readouterr().err


def test_a_run_measures_each_link_s_delay_from_its_keepalive_round_trips():
    result = run("quickstart", "sim")  # 5 ms links, 1 ms of jitter, 100 Mbps
    assert sorted(result.link_delays) == ["a-b", "a-f", "b-c", "d-e", "e-f"]  # c-d went down
    assert all(d == pytest.approx(0.005, abs=0.001) for d in result.link_delays.values())
