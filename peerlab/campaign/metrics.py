"""The numbers a campaign keeps of each run, and their names.

A metric name is words joined by ``_``; a ``.`` may stand for any ``_``, so
``convergence.p50``, ``convergence_p50`` and ``convergence.link_down.p50`` all name metrics.
``scenarios/README.md`` lists them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from peerlab.campaign.stats import percentile
from peerlab.results import RunResult, convergence_time
from peerlab.scenario import TOPOLOGY_EVENTS, Scenario

#: the statistics kept of latencies and of convergence times: name -> function of the samples
STATS: dict[str, Callable[[list[float]], float | None]] = {
    "mean": lambda xs: statistics.fmean(xs) if xs else None,
    "p50": lambda xs: percentile(xs, 50),
    "p90": lambda xs: percentile(xs, 90),
    "p99": lambda xs: percentile(xs, 99),
    "max": lambda xs: max(xs, default=None),
}
#: message types that carry the application's messages; every other type is control traffic
DATA_TYPES = frozenset({"data", "ack", "batch"})
#: the metrics every run has, with what they mean (``scenarios/README.md`` shows this list)
FIXED = {
    "sent": "messages sent",
    "delivered": "messages delivered",
    "delivered_ratio": "delivered / sent (empty when nothing was sent)",
    **{f"latency_{s}": f"one-way delivery latency, {s} (seconds)" for s in STATS},
    "hops_mean": "hops a delivered message took, mean",
    "hops_max": "hops a delivered message took, max",
    **{
        f"convergence_{s}": f"time from a topology change (or the start) until every table "
        f"matched networkx, {s} over the changes that converged (seconds)"
        for s in STATS
    },
    "not_converged": "topology changes after which the tables never matched",
    "members": "members that ran (the initial ones and those that joined)",
    "control_frames_per_member": "frames other than data, ack and batch, per member",
    "control_bytes_per_member": "bytes of those frames, per member",
    "frames_per_member": "all frames sent, per member",
    "bytes_per_member": "all bytes sent, per member",
    "wall_time": "seconds the run took on its worker",
}
#: what a kind-specific convergence metric may name: the start, or a topology event kind
CONVERGENCE_KINDS = ("start", *sorted(TOPOLOGY_EVENTS))


def canonical(name: str) -> str:
    """The metric's name with ``_`` for every ``.``."""
    return name.replace(".", "_")


def is_metric(name: str) -> bool:
    """Whether ``name`` names a metric, in either spelling."""
    name = canonical(name)
    if name in FIXED:
        return True
    return any(name == f"convergence_{kind}_{s}" for kind in CONVERGENCE_KINDS for s in STATS)


def metric_names() -> list[str]:
    """Every metric's name, the kind-specific convergence ones as a pattern."""
    return [*FIXED, f"convergence_KIND_STAT (KIND: {', '.join(CONVERGENCE_KINDS)})"]


def measure(result: RunResult, scenario: Scenario) -> dict[str, Any]:
    """Every metric of one run, by canonical name (kind-specific convergence metrics only for
    the kinds the run had)."""
    messages = result.messages
    delivered = result.delivered
    latencies = [m["delivered_at"] - m["sent_at"] for m in delivered]
    hops = [len(m["path"]) - 1 for m in delivered]
    took: dict[str, list[float]] = {}
    for window in result.convergence:
        if window["converged_at"] is not None:
            kind = window["event"].split()[0]
            took.setdefault(kind, []).append(convergence_time(window))
    members = set(scenario.everyone)
    frames, sizes = result.counters.get("frames", {}), result.counters.get("bytes", {})
    out: dict[str, Any] = {
        "sent": len(messages),
        "delivered": len(delivered),
        "delivered_ratio": len(delivered) / len(messages) if messages else None,
        "hops_mean": statistics.fmean(hops) if hops else None,
        "hops_max": max(hops, default=None),
        "not_converged": sum(w["status"] == "not_converged" for w in result.convergence),
        "members": len(members),
        "control_frames_per_member": _per(frames, members, control=True),
        "control_bytes_per_member": _per(sizes, members, control=True),
        "frames_per_member": _per(frames, members, control=False),
        "bytes_per_member": _per(sizes, members, control=False),
        "wall_time": result.wall_time,
    }
    everything = [t for times in took.values() for t in times]
    for s, stat in STATS.items():
        out[f"latency_{s}"] = _seconds(stat(latencies))
        out[f"convergence_{s}"] = _seconds(stat(everything))
        for kind, times in took.items():
            out[f"convergence_{kind}_{s}"] = _seconds(stat(times))
    return out


def _per(counts: dict[str, int], members: set[str], *, control: bool) -> float:
    total = sum(n for kind, n in counts.items() if not (control and kind in DATA_TYPES))
    return total / len(members)


def _seconds(value: float | None) -> float | None:
    # times are differences of instants the runner rounds to the microsecond
    return None if value is None else round(value, 6)
