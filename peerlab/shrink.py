"""Shrinking a failing schedule to a small one that still fails the same way.

In the spirit of hypothesis's shrinker and delta debugging: try smaller versions of the schedule
(fewer steps, fewer members, fewer links, less traffic) and keep each one that still violates
the same invariant, until no smaller version does or the budget of runs is spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from peerlab.schedules import TRAFFIC, Schedule, Step

#: Whether a candidate schedule still fails the way the original did.
StillFails = Callable[[Schedule], bool]


def shrink(schedule: Schedule, still_fails: StillFails, *, budget: int = 300) -> Schedule:
    """The smallest schedule found (within ``budget`` runs) that ``still_fails``."""
    runs = 0

    def attempt(candidate: Schedule) -> bool:
        nonlocal runs
        if runs >= budget:
            return False
        runs += 1
        return still_fails(candidate)

    best = schedule
    changed = True
    while changed and runs < budget:
        changed = False
        for make in (_fewer_steps, _fewer_members, _fewer_links, _less_traffic):
            smaller = make(best, attempt)
            if smaller is not best:
                best, changed = smaller, True
    return best


def _fewer_steps(schedule: Schedule, attempt: Callable[[Schedule], bool]) -> Schedule:
    """Delta debugging over the steps: drop chunks of halving size while it still fails."""
    steps = list(schedule.steps)
    size = max(1, len(steps) // 2)
    while steps and size >= 1:
        i, dropped = 0, False
        while i < len(steps):
            candidate = schedule.with_steps(steps[:i] + steps[i + size :])
            if attempt(candidate):
                steps, schedule, dropped = list(candidate.steps), candidate, True
            else:
                i += size
        if not dropped:
            size //= 2
    return schedule


def _fewer_members(schedule: Schedule, attempt: Callable[[Schedule], bool]) -> Schedule:
    for member in list(schedule.base.members):
        if len(schedule.base.members) <= 2:
            break
        steps = [s for s in (_without(step, member) for step in schedule.steps) if s is not None]
        candidate = replace(schedule, base=schedule.base.without(member), steps=tuple(steps))
        if attempt(candidate):
            schedule = candidate
    return schedule


def _fewer_links(schedule: Schedule, attempt: Callable[[Schedule], bool]) -> Schedule:
    for pair in list(schedule.base.links):
        candidate = replace(schedule, base=schedule.base.without_link(pair))
        if attempt(candidate):
            schedule = candidate
    return schedule


def _less_traffic(schedule: Schedule, attempt: Callable[[Schedule], bool]) -> Schedule:
    for i, step in enumerate(schedule.steps):
        if step.kind == TRAFFIC and step.value["count"] > 1:
            steps = list(schedule.steps)
            steps[i] = replace(step, value={**step.value, "count": 1})
            candidate = schedule.with_steps(steps)
            if attempt(candidate):
                schedule = candidate
    return schedule


def _without(step: Step, member: str) -> Step | None:
    """``step`` with ``member`` taken out of it, or None if nothing of it is left."""
    value: Any = step.value
    if step.kind == "join":
        if value["member"] == member:
            return None
        connect = [c for c in value["connect"] if c != member]
        return replace(step, value={**value, "connect": connect}) if connect else None
    if step.kind == "partition":
        groups = value["groups"] if isinstance(value, dict) else value
        groups = [[m for m in g if m != member] for g in groups]
        if sum(1 for g in groups if g) < 2:
            return None
        groups = [g for g in groups if g]
        return replace(
            step, value={**value, "groups": groups} if isinstance(value, dict) else groups
        )
    if step.kind == "send":
        return None if member in (value["from"], value["to"]) else step
    if isinstance(value, list):
        return None if member in value else step
    return None if value == member else step
