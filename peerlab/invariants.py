"""What must hold of any run, whatever happened in it.

These are the checks behind ``peerlab explore`` and a scenario's ``expect.invariants``, each
computed from a run's results and trace alone:

- ``tables``: every live member's final routing table equals networkx's shortest paths over
  the links that should be up;
- ``messages``: every message sent is in the results exactly once;
- ``reliable``: no reliable message was acknowledged without being delivered, none was
  delivered twice unless its receiver restarted in between, and none sent longer than its
  deadline before the end is still unsettled;
- ``paths``: every delivered path runs from the source to the destination without repeating a
  member, over pairs of members that were connected at some moment while it travelled;
- ``convergence``: after the last topology event, the tables matched the truth within the bound.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from peerlab import trace as ev
from peerlab.oracle import Oracle
from peerlab.results import RunResult, convergence_time
from peerlab.trace import TraceEvent

INVARIANTS = ("tables", "messages", "reliable", "paths", "convergence")

#: A disconnect that closes one of two connections to a peer: the link stays up.
DUPLICATE = "duplicate connection"


@dataclass(frozen=True)
class Violation:
    """One invariant that did not hold, and where."""

    invariant: str
    detail: str


def violations(
    result: RunResult,
    *,
    reliable_deadline: float,
    bound: float | None = None,
    time: Callable[[float], float] = float,
    limit: int = 5,
) -> list[Violation]:
    """Every invariant violated by ``result`` (at most ``limit`` details each).

    ``time`` converts trace times to scenario times (the runner's clock); ``bound`` is the
    convergence bound, and the convergence invariant is checked only when it is given.
    """
    events = result.trace
    found: list[Violation] = []
    checks: list[tuple[str, Iterable[str]]] = [
        (
            "tables",
            Oracle(result.members, map(tuple, result.final_links)).errors(
                result.routing_tables, limit=limit
            ),
        ),
        ("messages", _messages(result, events)),
        ("reliable", _reliable(result, events, reliable_deadline, time)),
        ("paths", _paths(result, events, time)),
    ]
    if bound is not None:
        checks.append(("convergence", _convergence(result, bound)))
    for name, details in checks:
        for n, detail in enumerate(details):
            if n == limit:
                break
            found.append(Violation(name, detail))
    return found


def _messages(result: RunResult, events: list[TraceEvent]) -> Iterable[str]:
    counts = Counter(m["id"] for m in result.messages)
    for msg_id, n in counts.items():
        if n > 1:
            yield f"message {msg_id} is in the results {n} times"
    for e in events:
        if e.kind == ev.SEND and e.fields["msg_id"] not in counts:
            yield f"message {e.fields['msg_id']} sent by {e.member} is not in the results"


def _starts(events: list[TraceEvent], time: Callable[[float], float]) -> dict[str, list[float]]:
    starts: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.kind == ev.START:
            starts[e.member].append(time(e.time))
    return starts


def _reliable(
    result: RunResult,
    events: list[TraceEvent],
    deadline: float,
    time: Callable[[float], float],
) -> Iterable[str]:
    reliable = {m["id"]: m for m in result.messages if m.get("reliable")}
    if not reliable:
        return
    delivered: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.kind == ev.DELIVER and e.fields["msg_id"] in reliable:
            delivered[e.fields["msg_id"]].append(time(e.time))
    starts = _starts(events, time)
    for msg_id, m in reliable.items():
        times = delivered.get(msg_id, [])
        if m["acked_at"] is not None and not times:
            yield f"reliable {msg_id} ({m['src']}->{m['dst']}) was acknowledged, never delivered"
        for first, later in pairwise(times):
            if not any(first < t <= later for t in starts.get(m["dst"], ())):
                yield (
                    f"reliable {msg_id} was delivered to {m['dst']} at {first:g}s and again at "
                    f"{later:g}s, with no restart of {m['dst']} in between"
                )
        if m["drop_reason"] == "unsettled" and m["sent_at"] + deadline < result.duration:
            yield f"reliable {msg_id} sent at {m['sent_at']:g}s was never settled"


def _connected(
    events: list[TraceEvent], time: Callable[[float], float]
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """For each (member, peer), the intervals during which the member held a connection."""
    opened: dict[tuple[str, str], float] = {}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        peer = e.fields.get("peer")
        if peer is None:
            continue
        pair = (e.member, peer)
        if e.kind == ev.CONNECT:
            opened.setdefault(pair, time(e.time))
        elif e.kind == ev.DISCONNECT and e.fields.get("reason") != DUPLICATE and pair in opened:
            spans[pair].append((opened.pop(pair), time(e.time)))
        elif e.kind in (ev.STOP, ev.START):  # a life's end, or a new life after a crash
            for key in [k for k in opened if k[0] == e.member]:
                spans[key].append((opened.pop(key), time(e.time)))
    for pair, since in opened.items():
        spans[pair].append((since, float("inf")))
    return spans


def _paths(
    result: RunResult, events: list[TraceEvent], time: Callable[[float], float]
) -> Iterable[str]:
    spans = _connected(events, time)
    for m in result.messages:
        if m["delivered_at"] is None:
            continue
        path = m["path"]
        if path[0] != m["src"] or path[-1] != m["dst"] or len(set(path)) != len(path):
            yield f"message {m['id']} ({m['src']}->{m['dst']}) took the path {path}"
            continue
        sent, arrived = m["sent_at"], m["delivered_at"]
        for u, v in pairwise(path):
            if not any(a <= arrived and sent <= b for a, b in spans.get((u, v), ())):
                yield (
                    f"message {m['id']} crossed {u}->{v} between {sent:g}s and {arrived:g}s, "
                    f"when {u} held no connection to {v}"
                )
                break


def _convergence(result: RunResult, bound: float) -> Iterable[str]:
    if not result.convergence:
        return
    last: dict[str, Any] = result.convergence[-1]
    took = convergence_time(last)
    if took is None or took > bound:
        shown = "never" if took is None else f"after {took:.3f}s"
        yield (
            f"after {last['event']} at {last['at']:g}s the tables matched {shown} "
            f"(bound {bound:g}s)"
        )
