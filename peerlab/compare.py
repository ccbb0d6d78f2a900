"""Real against simulated: run one scenario on both backends and say where they differ."""

from __future__ import annotations

from typing import Any

from peerlab.console import render, table
from peerlab.results import RunResult, convergence_time
from peerlab.runner import Progress, latency_stats, run
from peerlab.scenario import Scenario

CONTROL_KINDS = ("hello", "adverts", "ping", "pong", "bye")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}ms"


def _error(real: float | None, sim: float | None) -> float | None:
    """``real`` relative to ``sim``: +0.1 is 10% more."""
    if real is None or not sim:
        return None
    return round((real - sim) / sim, 4)


def compare_results(sim: RunResult, real: RunResult) -> dict[str, Any]:
    """A side-by-side of two runs of one scenario, with a verdict on routing, and one on
    timing (the real latencies' error against the simulator's) only if both runs kept time."""
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
        took = [convergence_time(c) for c in (cs, cr)]
        conv.append({"event": cs["event"], "at": cs["at"], "sim": took[0], "real": took[1]})
    verdict_ok = tables_same
    latency = {"sim": latency_stats(sim), "real": latency_stats(real)}
    late = [f"{r.backend}: {r.timing.get('worst')}" for r in (sim, real) if not r.timing_ok]
    error = {p: _error(latency["real"][p], latency["sim"][p]) for p in ("median", "p99")}
    if late:
        timing_verdict = "NO TIMING VERDICT: the run fell behind its schedule (" + "; ".join(late)
        timing_verdict += "), so its latencies and convergence times measure the machine"
    else:
        timing_verdict = "timing: real latency " + ", ".join(
            f"{p} {'-' if e is None else f'{e:+.1%}'}" for p, e in error.items()
        )
        timing_verdict += " against sim"
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
        "latency": latency,
        "timing_ok": {"sim": sim.timing_ok, "real": real.timing_ok},
        "latency_error": None if late else error,
        "timing_verdict": timing_verdict,
        "convergence": conv,
        "control": {
            "frames": {"sim": control(sim, "frames"), "real": control(real, "frames")},
            "bytes": {"sim": control(sim, "bytes"), "real": control(real, "bytes")},
        },
        "expectations": {"sim": sim.ok, "real": real.ok},
        "backend": real.backend,  # of the run under "real": real, or proc
        "agree": verdict_ok,
        "verdict": (
            f"AGREE: identical routing tables in sim and {real.backend}"
            if verdict_ok
            else f"DISAGREE: routing tables differ at {', '.join(differing)}"
        ),
    }


def compare(
    scenario: Scenario | str, *, time_scale: float = 1.0, progress: Progress | None = None
) -> tuple[dict[str, Any], RunResult, RunResult]:
    """Run ``scenario`` on both backends; returns (comparison, sim result, real result).
    ``progress`` is told how the real run goes (see :func:`peerlab.runner.run`)."""
    sim = run(scenario, "sim")
    real = run(scenario, "real", time_scale=time_scale, progress=progress)
    return compare_results(sim, real), sim, real


def format_comparison(c: dict[str, Any]) -> str:
    """The comparison as aligned text tables, the verdict last."""
    yes = {True: "yes", False: "NO"}
    same = table("", "", header=False)
    same.add_row("routing tables identical", yes[c["routing_tables_identical"]])
    same.add_row("delivered sets identical", yes[c["delivered_sets_identical"]])
    same.add_row("paths identical", yes[c["paths_identical"]])
    side = table("", ">sim", ">real")
    d = c["delivered"]
    side.add_row(
        "delivered / sent",
        f"{d['sim']}/{d['sent']['sim']}",
        f"{d['real']}/{d['sent']['real']}",
    )
    h = c["mean_hops"]
    side.add_row("mean hops", *("-" if v is None else f"{v:.2f}" for v in (h["sim"], h["real"])))
    lat = c["latency"]
    for name in ("median", "p99"):
        side.add_row(f"latency {name}", _ms(lat["sim"][name]), _ms(lat["real"][name]))
    for k in ("frames", "bytes"):
        v = c["control"][k]
        side.add_row(f"control {k}", str(v["sim"]), str(v["real"]))
    e = c["expectations"]
    side.add_row("expectations hold", yes[e["sim"]], yes[e["real"]])
    parts: list = [f"scenario {c['scenario']}: real vs sim", same, side]
    if c["convergence"]:
        converged = table("convergence after", ">sim", ">real")
        for row in c["convergence"]:
            converged.add_row(f"{row['event']} @{row['at']:g}s", _ms(row["sim"]), _ms(row["real"]))
        parts.append(converged)
    parts.append(c["verdict"])
    parts.append(c["timing_verdict"])
    return render(*parts)
