"""Fidelity: how far the real backends fall from the simulator's prediction.

Runs each scenario of ``benchmarks/fidelity/`` (jitter, a bandwidth bottleneck under bursts,
loss, and the three together) in the simulator and on the real backends, and prints the relative
error of real against sim: median and p99 one-way latency, convergence after each topology
event (from when it was applied), and control frames; with whether the real runs kept time.
Each side runs the scenario with several seeds and pools them (a tail of lost segments is a
few messages in one run). Run: python benchmarks/bench_fidelity.py [--backends real proc]
[--seeds N] [--json FILE] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from harness import machine_line

from peerlab.runner import run
from peerlab.scenario import load_scenario

HERE = Path(__file__).resolve().parent
SCENARIOS = sorted((HERE / "fidelity").glob("*.yaml"))
CONTROL = ("hello", "adverts", "ping", "pong", "bye")


def error(real: float | None, sim: float | None) -> float | None:
    """``real`` relative to ``sim`` (+0.1: 10% more)."""
    if real is None or not sim:
        return None
    return (real - sim) / sim


def took(window: dict[str, Any]) -> float | None:
    """A convergence window's time, from when its event was applied (older results: its
    scenario time)."""
    if window["converged_at"] is None:
        return None
    return window["converged_at"] - window.get("applied_at", window["at"])


def control_frames(result) -> int:
    return sum(result.counters["frames"].get(k, 0) for k in CONTROL)


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    """Median and p99 (as ``runner.latency_stats`` takes them) of pooled latencies."""
    lat = sorted(latencies)
    if not lat:
        return {"median": None, "p99": None}
    return {"median": statistics.median(lat), "p99": lat[round(0.99 * (len(lat) - 1))]}


def pooled(results: list) -> dict[str, Any]:
    """What the runs of one backend show, pooled: latencies of every message delivered, the
    mean convergence time after each topology event, control frames, and whether all kept time."""
    latencies = [m["delivered_at"] - m["sent_at"] for r in results for m in r.delivered]
    windows = zip(*(r.convergence for r in results), strict=False)
    conv = []
    for same in windows:
        times = [took(w) for w in same]
        conv.append((same[0]["event"], None if None in times else statistics.mean(times)))
    late = [r.timing.get("worst") for r in results if not getattr(r, "timing_ok", True)]
    return {
        "latency": percentiles(latencies),
        "convergence": conv,
        "control": sum(control_frames(r) for r in results),
        "timing_ok": not late if all(hasattr(r, "timing_ok") for r in results) else None,
        "late": late,
    }


def measure(path: Path, backends: list[str], seeds: int) -> list[dict[str, Any]]:
    """One row per backend: its errors against the simulator on the scenario at ``path``, each
    side pooled over ``seeds`` seeds (the scenario's and those after it)."""
    scenario = load_scenario(path)
    runs = [scenario.with_seed(scenario.seed + i) for i in range(seeds)]
    sim = pooled([run(sc, "sim") for sc in runs])
    rows = []
    for backend in backends:
        real = pooled([run(sc, backend) for sc in runs])
        rows.append(
            {
                "scenario": scenario.name,
                "backend": backend,
                "seeds": seeds,
                "median": error(real["latency"]["median"], sim["latency"]["median"]),
                "p99": error(real["latency"]["p99"], sim["latency"]["p99"]),
                "sim_ms": {k: v * 1000 for k, v in sim["latency"].items() if v is not None},
                "real_ms": {k: v * 1000 for k, v in real["latency"].items() if v is not None},
                "convergence": [
                    (event, error(r, s))
                    for (event, s), (_, r) in zip(
                        sim["convergence"], real["convergence"], strict=False
                    )
                ],
                "control_frames": error(real["control"], sim["control"]),
                "timing_ok": real["timing_ok"],
                "late": real["late"],
            }
        )
    return rows


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_fidelity.py")
    p.add_argument("scenarios", nargs="*", type=Path, default=SCENARIOS)
    p.add_argument("--backends", nargs="+", default=["real", "proc"])
    p.add_argument("--seeds", type=int, default=3, help="runs of each scenario, pooled")
    p.add_argument("--json", type=Path, help="write every row here")
    args = p.parse_args(argv)
    print(machine_line())
    head = (
        f"{'scenario':22} {'backend':7} {'median':>8} {'p99':>8} {'conv(mean|err|)':>15} "
        f"{'control':>8}  timing"
    )
    print(head)
    rows = []
    for path in args.scenarios:
        for row in measure(path, args.backends, args.seeds):
            rows.append(row)
            errs = [abs(e) for _, e in row["convergence"] if e is not None]
            conv = statistics.mean(errs) if errs else None
            timing = {True: "kept", False: "LATE", None: "?"}[row["timing_ok"]]
            print(
                f"{row['scenario']:22} {row['backend']:7} {pct(row['median']):>8} "
                f"{pct(row['p99']):>8} {pct(conv):>15} {pct(row['control_frames']):>8}  "
                f"{timing}",
                flush=True,
            )
            for event, e in row["convergence"]:
                print(f"{'':31}   convergence after {event}: {pct(e)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
