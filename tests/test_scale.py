"""The real backends at the sizes the project promises on a 2-core machine: 400 members on one
loop (real) and 200 in processes (proc) converge from a cold start and agree with networkx."""

from pathlib import Path

import pytest

from peerlab.runner import run
from peerlab.scenario import load_scenario

SCALE = Path(__file__).resolve().parent.parent / "benchmarks" / "scale.yaml"


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "n"), [("real", 400), ("proc", 200)])
def test_a_cold_start_of_the_promised_size_converges_and_agrees(backend, n):
    text = SCALE.read_text().replace("count: 400", f"count: {n}")
    result = run(load_scenario(SCALE, text), backend)
    routes = next(e for e in result.expectations if e["name"] == "routes")
    assert routes["ok"], routes["detail"]
    assert result.convergence[0]["converged_at"] is not None
    assert sorted(map(tuple, result.final_links)) == sorted(map(tuple, result.initial_links))
    assert result.timing_ok or any(w.startswith("timing:") for w in result.warnings)
