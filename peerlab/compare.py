"""Real against simulated: run one scenario on both backends and say where they differ."""

from __future__ import annotations

from typing import Any

from peerlab.results import RunResult
from peerlab.runner import latency_stats, run
from peerlab.scenario import Scenario

CONTROL_KINDS = ("hello", "adverts", "ping", "pong", "bye")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}ms"


def compare_results(sim: RunResult, real: RunResult) -> dict[str, Any]:
    """A side-by-side of two runs of one scenario, with a verdict on routing."""
    tables_same = sim.routing_tables == real.routing_tables
    differing = sorted(
        m
        for m in set(sim.routing_tables) | set(real.routing_tables)
        if sim.routing_tables.get(m) != real.routing_tables.get(m)
    )

    def by_key(result: RunResult) -> dict[tuple, dict]:
        # message ids are per-member counters, identical in both worlds for the same sends
        return {(m["id"], m["src"], m["dst"]): m for m in result.messages}

    ms, mr = by_key(sim), by_key(real)
    delivered_s = {k for k, m in ms.items() if m["delivered_at"] is not None}
    delivered_r = {k for k, m in mr.items() if m["delivered_at"] is not None}
    both = sorted(delivered_s & delivered_r)
    path_diffs = [k[0] for k in both if ms[k]["path"] != mr[k]["path"]]

    def control(result: RunResult, what: str) -> int:
        return sum(result.counters[what].get(k, 0) for k in CONTROL_KINDS)

    def hops(result: RunResult) -> float | None:
        d = result.delivered
        return sum(len(m["path"]) - 1 for m in d) / len(d) if d else None

    conv = []
    for cs, cr in zip(sim.convergence, real.convergence, strict=False):
        took = [
            None if c["converged_at"] is None else c["converged_at"] - c["at"] for c in (cs, cr)
        ]
        conv.append({"event": cs["event"], "at": cs["at"], "sim": took[0], "real": took[1]})
    verdict_ok = tables_same
    return {
        "scenario": sim.scenario,
        "routing_tables_identical": tables_same,
        "members_with_different_tables": differing,
        "delivered_sets_identical": delivered_s == delivered_r,
        "delivered": {
            "sim": len(delivered_s),
            "real": len(delivered_r),
            "sent": {"sim": len(ms), "real": len(mr)},
        },
        "paths_identical": not path_diffs and delivered_s == delivered_r,
        "messages_with_different_paths": path_diffs,
        "mean_hops": {"sim": hops(sim), "real": hops(real)},
        "latency": {"sim": latency_stats(sim), "real": latency_stats(real)},
        "convergence": conv,
        "control": {
            "frames": {"sim": control(sim, "frames"), "real": control(real, "frames")},
            "bytes": {"sim": control(sim, "bytes"), "real": control(real, "bytes")},
        },
        "expectations": {"sim": sim.ok, "real": real.ok},
        "agree": verdict_ok,
        "verdict": (
            "AGREE: identical routing tables in sim and real"
            if verdict_ok
            else f"DISAGREE: routing tables differ at {', '.join(differing)}"
        ),
    }


def compare(
    scenario: Scenario | str, *, time_scale: float = 1.0, progress=None
) -> tuple[dict[str, Any], RunResult, RunResult]:
    """Run ``scenario`` on both backends; returns (comparison, sim result, real result)."""
    sim = run(scenario, "sim")
    real = run(scenario, "real", time_scale=time_scale, progress=progress)
    return compare_results(sim, real), sim, real


def format_comparison(c: dict[str, Any]) -> str:
    """The comparison as an aligned text table."""
    yes = {True: "yes", False: "NO"}
    rows = [
        ("routing tables identical", yes[c["routing_tables_identical"]]),
        ("delivered sets identical", yes[c["delivered_sets_identical"]]),
        ("paths identical", yes[c["paths_identical"]]),
    ]
    lines = [f"scenario {c['scenario']}: real vs sim", ""]
    lines += [f"  {k:<28} {v}" for k, v in rows]
    lines.append("")
    lines.append(f"  {'':<28} {'sim':>12} {'real':>12}")
    d = c["delivered"]
    lines.append(
        f"  {'delivered / sent':<28} {d['sim']:>5}/{d['sent']['sim']:<6} "
        f"{d['real']:>5}/{d['sent']['real']:<6}"
    )
    h = c["mean_hops"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines.append(f"  {'mean hops':<28} {fmt(h['sim']):>12} {fmt(h['real']):>12}")
    lat = c["latency"]
    lines.append(
        f"  {'latency median':<28} {_ms(lat['sim']['median']):>12} {_ms(lat['real']['median']):>12}"
    )
    lines.append(
        f"  {'latency p99':<28} {_ms(lat['sim']['p99']):>12} {_ms(lat['real']['p99']):>12}"
    )
    for k in ("frames", "bytes"):
        v = c["control"][k]
        lines.append(f"  {'control ' + k:<28} {v['sim']:>12} {v['real']:>12}")
    e = c["expectations"]
    lines.append(f"  {'expectations hold':<28} {yes[e['sim']]:>12} {yes[e['real']]:>12}")
    if c["convergence"]:
        lines.append("")
        lines.append(f"  {'convergence after':<28} {'sim':>12} {'real':>12}")
        for row in c["convergence"]:
            label = f"{row['event']} @{row['at']:g}s"
            lines.append(f"  {label[:28]:<28} {_ms(row['sim']):>12} {_ms(row['real']):>12}")
    lines += ["", c["verdict"]]
    return "\n".join(lines)
