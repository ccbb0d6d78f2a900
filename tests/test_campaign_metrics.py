"""What a campaign keeps of each run, and the statistics over runs."""

import math
import statistics
from pathlib import Path

import pytest

from peerlab.campaign.metrics import canonical, is_metric, measure
from peerlab.campaign.stats import mean_ci, percentile, t975
from peerlab.runner import run
from peerlab.scenario import load_scenario

SMALL = Path(__file__).resolve().parent / "campaigns" / "small.yaml"


def test_a_run_is_measured_by_every_metric():
    scenario = load_scenario(SMALL)
    result = run(scenario, "sim")
    metrics = measure(result, scenario)
    assert (metrics["sent"], metrics["delivered"], metrics["delivered_ratio"]) == (10, 10, 1.0)
    latencies = [m["delivered_at"] - m["sent_at"] for m in result.messages]
    assert metrics["latency_max"] == pytest.approx(max(latencies))
    assert metrics["latency_p50"] == pytest.approx(statistics.median(latencies))
    start, crash = (round(c["converged_at"] - c["at"], 6) for c in result.convergence)
    assert (metrics["convergence_start_p50"], metrics["convergence_crash_p50"]) == (start, crash)
    assert metrics["convergence_p50"] == pytest.approx((start + crash) / 2)
    assert "convergence_link_down_p50" not in metrics  # the run had no such event
    frames, sizes = result.counters["frames"], result.counters["bytes"]
    control = sum(n for kind, n in sizes.items() if kind not in ("data", "ack", "batch"))
    assert metrics["control_bytes_per_member"] == control / 6
    assert metrics["bytes_per_member"] == sum(sizes.values()) / 6
    assert metrics["frames_per_member"] == sum(frames.values()) / 6
    assert metrics["hops_max"] == max(len(m["path"]) - 1 for m in result.messages)
    assert metrics["not_converged"] == 0 and metrics["members"] == 6


def test_a_metric_has_two_spellings():
    assert canonical("convergence.link_down.p50") == "convergence_link_down_p50"
    for name in ("convergence.p50", "convergence_p50", "convergence.crash.max", "wall_time"):
        assert is_metric(name)
    for name in ("convergence.nothing.p50", "p50", "latency_p75", "convergence_crash"):
        assert not is_metric(name)


def test_percentiles_interpolate_between_ranks():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None


def test_confidence_intervals_use_students_t():
    assert t975(2) == 4.303
    assert t975(60) == pytest.approx(2.0003, abs=1e-4)
    assert t975(1000) == pytest.approx(1.9623, abs=1e-4)
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert (mean, half) == (2.0, pytest.approx(4.303 / math.sqrt(3)))
    mean, half = mean_ci([5.0])
    assert mean == 5.0 and math.isnan(half)


def test_the_scenarios_readme_names_every_metric():
    from peerlab.campaign.metrics import FIXED, STATS

    text = (SMALL.parent.parent.parent / "scenarios" / "README.md").read_text()
    documented = text[text.index("### Metrics") :]
    for name in FIXED:
        stat = name.rpartition("_")[2]
        assert f"`{name}`" in documented or (
            stat in STATS and f"`{name.rpartition('_')[0]}_STAT`" in documented
        ), name
    for stat in STATS:
        assert f"`{stat}`" in documented
