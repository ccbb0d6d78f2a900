"""Judging a run against its scenario's ``expect``: one ``{"name", "ok", "detail"}`` each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from peerlab.invariants import INVARIANTS, violations
from peerlab.oracle import Oracle
from peerlab.results import RunResult, convergence_time
from peerlab.scenario import Expect


def judge(
    expect: Expect,
    result: RunResult,
    oracle: Oracle,
    *,
    reliable_deadline: float,
    time: Callable[[float], float],
) -> list[dict[str, Any]]:
    """The expectations of ``expect``, judged on ``result`` (tables against ``oracle``, the
    truth at the end; trace times converted with ``time``)."""
    out = []
    if expect.delivered is not None:
        out.append(_delivered(expect.delivered, result.messages))
    if expect.routes == "shortest":
        errors = oracle.errors(result.routing_tables, limit=5)
        detail = "every table matches networkx BFS" if not errors else "; ".join(errors)
        out.append({"name": "routes", "ok": not errors, "detail": detail})
    if expect.converged_within is not None:
        out.append(_converged(expect.converged_within, result.convergence))
    if expect.invariants:
        out += _invariants(result, expect.converged_within, reliable_deadline, time)
    return out


def _delivered(needed: float, messages: list[dict[str, Any]]) -> dict[str, Any]:
    sent = len(messages)
    got = sum(1 for m in messages if m["delivered_at"] is not None)
    ratio = got / sent if sent else 1.0
    reasons = Counter(m["drop_reason"] for m in messages if m["delivered_at"] is None)
    detail = f"{got}/{sent} delivered ({ratio:.1%}), need {needed:.1%}"
    if reasons:
        detail += "; drops: " + ", ".join(f"{r} x{n}" for r, n in sorted(reasons.items()))
    return {"name": "delivered", "ok": ratio >= needed, "detail": detail}


def _converged(bound: float, windows: list[dict[str, Any]]) -> dict[str, Any]:
    bad = []
    for c in windows:
        if c["status"] == "superseded":
            continue
        took = convergence_time(c)
        if took is None or took > bound:
            shown = "never" if took is None else f"{took:.3f}s"
            bad.append(f"{c['event']} at {c['at']}s: {shown}")
    detail = (
        f"every topology event converged within {bound}s"
        if not bad
        else "too slow: " + "; ".join(bad)
    )
    return {"name": "converged_within", "ok": not bad, "detail": detail}


def _invariants(
    result: RunResult,
    bound: float | None,
    reliable_deadline: float,
    time: Callable[[float], float],
) -> list[dict[str, Any]]:
    """One expectation per invariant of :mod:`peerlab.invariants`."""
    found = violations(result, reliable_deadline=reliable_deadline, bound=bound, time=time)
    names = [n for n in INVARIANTS if n != "convergence" or bound is not None]
    return [
        {
            "name": f"invariant {name}",
            "ok": not (bad := [v.detail for v in found if v.invariant == name]),
            "detail": "; ".join(bad) if bad else "holds",
        }
        for name in names
    ]
