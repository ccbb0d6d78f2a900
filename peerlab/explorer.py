"""``peerlab explore``: deterministic simulation testing of the overlay.

In the spirit of FoundationDB's simulator and hypothesis: for each seed, a random schedule of
faults and traffic (:mod:`peerlab.schedules`) runs in the simulator, then every invariant of
:mod:`peerlab.invariants` is checked, and the seed runs a second time to check that the trace is
byte for byte the same. A failing schedule is shrunk (:mod:`peerlab.shrink`) to a small one that
still fails the same way and written as a scenario whose expectations fail, so that
``peerlab run`` reproduces it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from peerlab.errors import PeerlabError
from peerlab.invariants import INVARIANTS, Violation, violations
from peerlab.member import Member
from peerlab.results import RunResult
from peerlab.runner import run
from peerlab.scenario import Scenario, load_scenario, member_config
from peerlab.schedules import FAULT_KINDS, Base, Schedule, generate
from peerlab.shrink import shrink
from peerlab.trace import digest

#: The check that each seed's two runs leave the same trace.
DETERMINISM = "determinism"
CHECKED = (*INVARIANTS, DETERMINISM)
TOPOLOGY_SUFFIXES = (".gml", ".graphml", ".txt", ".edges", ".edgelist", ".csv")


@dataclass
class Failure:
    """A seed whose schedule broke an invariant, and the shrunk scenario that still does."""

    seed: int
    violations: list[Violation]
    original: tuple[int, int]  # members, events
    shrunk: tuple[int, int]
    path: Path | None = None

    @property
    def invariant(self) -> str:
        """The invariant the shrunk scenario violates."""
        return self.violations[0].invariant


@dataclass
class ExploreReport:
    """What an exploration ran and found."""

    seeds: list[int] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    skipped: int = 0  # seeds left when the time budget ran out or enough seeds failed
    wall_time: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every seed run held every invariant."""
        return not self.failures


def base_of(source: str | Path) -> Base:
    """The network to explore: a scenario's (events and expectations left out), or a topology
    file's with the scenario defaults."""
    path = Path(source)
    if path.suffix in TOPOLOGY_SUFFIXES:
        text = f"name: {path.stem}\ntopology: {{file: {str(path.resolve())!r}}}\n"
        return Base.of(load_scenario(path, text=text))
    return Base.of(load_scenario(source))


class Explorer:
    """Runs schedules on one base network and judges them."""

    def __init__(
        self,
        base: Base,
        *,
        member_class: type[Member] = Member,
        bound: float = 5.0,
    ) -> None:
        self.base = base
        self.member_class = member_class
        self.bound = bound

    def run(self, schedule: Schedule) -> tuple[RunResult, Scenario]:
        """Run a schedule in the simulator."""
        scenario = schedule.scenario(f"{self.base.name} seed {schedule.seed}")
        return run(scenario, "sim", member_class=self.member_class), scenario

    def judge(self, schedule: Schedule, twice: bool = True) -> list[Violation]:
        """Every invariant the schedule's run violates (and determinism, if run ``twice``)."""
        result, scenario = self.run(schedule)
        found = violations(
            result, reliable_deadline=member_config(scenario).reliable_deadline, bound=self.bound
        )
        if twice:
            again, _ = self.run(schedule)
            first, second = digest(result.trace), digest(again.trace)
            if first != second:
                found.append(
                    Violation(
                        DETERMINISM,
                        f"two runs of seed {schedule.seed} left different "
                        f"traces ({first[:12]} and {second[:12]})",
                    )
                )
        return found

    def reproduction(self, schedule: Schedule, found: list[Violation]) -> Schedule:
        """``schedule`` with expectations that fail the way it does, and a description."""
        expect: dict = {"routes": "shortest", "invariants": True}
        if found[0].invariant == "convergence":
            expect["converged_within"] = self.bound
        detail = "; ".join(v.detail for v in found[:3])
        members, events = schedule.counts()
        return Schedule(
            schedule.base,
            schedule.seed,
            schedule.steps,
            schedule.faults_end,
            schedule.quiet,
            expect,
            f"peerlab explore, seed {schedule.seed} ({members} members, {events} events) "
            f"violates {found[0].invariant}: {detail}",
        )


def explore(
    source: str | Path | Base,
    *,
    seeds: Iterable[int] = range(1, 51),
    faults: Iterable[str] = FAULT_KINDS,
    events: int = 20,
    budget: float | None = None,
    out: str | Path | None = "out/explore",
    member_class: type[Member] = Member,
    bound: float = 5.0,
    max_failures: int = 1,
    shrink_runs: int = 300,
    progress: Callable[[int, int, int], None] | None = None,
) -> ExploreReport:
    """Explore random fault schedules on a network (a scenario, a topology file or a
    :class:`Base`); see the module's doc. Failing schedules are shrunk and written to ``out``
    (None: not written); exploring stops after ``max_failures`` failing seeds, or when
    ``budget`` seconds have passed; ``progress(done, total, failures)`` is told after each
    seed."""
    faults = list(faults)
    unknown = sorted(set(faults) - set(FAULT_KINDS))
    if unknown:
        raise PeerlabError(
            f"unknown fault kind(s) {', '.join(unknown)} (expected: {', '.join(FAULT_KINDS)})"
        )
    base = source if isinstance(source, Base) else base_of(source)
    explorer = Explorer(base, member_class=member_class, bound=bound)
    seeds = list(seeds)
    report = ExploreReport()
    start = time.monotonic()
    for n, seed in enumerate(seeds):
        out_of_time = budget is not None and time.monotonic() - start > budget
        if out_of_time or len(report.failures) >= max_failures:
            report.skipped = len(seeds) - n
            break
        schedule = generate(base, seed, events=events, faults=faults)
        found = explorer.judge(schedule)
        report.seeds.append(seed)
        report.checked.update(CHECKED)
        if found:
            report.failures.append(_failure(explorer, schedule, found, out, shrink_runs))
        if progress is not None:
            progress(n + 1, len(seeds), len(report.failures))
    report.wall_time = time.monotonic() - start
    return report


def _failure(
    explorer: Explorer,
    schedule: Schedule,
    found: list[Violation],
    out: str | Path | None,
    shrink_runs: int,
) -> Failure:
    """Shrink a failing schedule and write the reproduction."""
    invariant = found[0].invariant
    twice = invariant == DETERMINISM

    def still_fails(candidate: Schedule) -> bool:
        return any(v.invariant == invariant for v in explorer.judge(candidate, twice))

    small = shrink(schedule, still_fails, budget=shrink_runs)
    small_found = [v for v in explorer.judge(small, twice) if v.invariant == invariant] or found
    failure = Failure(schedule.seed, small_found, schedule.counts(), small.counts())
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        failure.path = explorer.reproduction(small, small_found).write(
            folder / f"{explorer.base.name}-seed{schedule.seed}-{invariant}.yaml"
        )
    return failure
