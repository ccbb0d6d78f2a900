"""Run a scenario on a backend and collect a :class:`~peerlab.results.RunResult`.

``run(scenario, backend)`` is a plain function of picklable inputs and outputs, so campaigns
can fan it out over processes and machines. The run is a timeline: the network
(:mod:`peerlab.network`) runs until the next event, which a :class:`~peerlab.truth.Director`
applies to it and to the truth; between events, every poll, a
:class:`~peerlab.convergence.Convergence` judges the tables and the runner dials again the
links that should be up and are not. The result is read off the trace
(:meth:`RunResult.from_trace <peerlab.results.RunResult.from_trace>`).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from peerlab import trace as ev
from peerlab.collector import cycle_collection_paused
from peerlab.convergence import Convergence
from peerlab.errors import PeerlabError
from peerlab.expectations import judge
from peerlab.member import Member, established_links
from peerlab.network import Network, network_class
from peerlab.results import RunResult
from peerlab.scenario import TOPOLOGY_EVENTS, Scenario, load_scenario, member_config
from peerlab.timeline import ViewRecorder, build_timeline
from peerlab.trace import Tracer
from peerlab.truth import Director, Pair, pair

#: Told ``(scenario time now, scenario end time, the event just applied or None)`` as a run goes.
Progress = Callable[[float, float, str | None], None]

#: How far behind its schedule a run may fall and still be trusted on timing (seconds): an event
#: applied late, the runner looking at the members late, or a member's loop running a timer late.
TIMING_TOLERANCE = 0.05

#: How often the runner dials again a scenario link that should be up and is not (seconds).
REDIAL_EVERY = 0.25


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        backend: str,
        time_scale: float,
        progress: Progress | None,
        member_class: type[Member],
        network_options: dict[str, Any],
    ) -> None:
        self.scenario = scenario
        self.backend = backend
        self.progress = progress
        self.tracer = Tracer(kinds=ev.KINDS - ev.CHATTY_KINDS)
        self.config = member_config(scenario)
        self.net: Network = network_class(backend).for_scenario(
            scenario,
            config=self.config,
            tracer=self.tracer,
            time_scale=time_scale,
            member_class=member_class,
            **network_options,
        )
        self.director = Director(scenario, self.net, self.tracer)
        self.convergence = Convergence(
            self.net, self.director.truth, scenario.expect.converged_within
        )
        self.views = ViewRecorder(len(scenario.everyone))
        # link -> when the runner last dialled it (the start dials every link at 0)
        self._dialled = {pair(link.a, link.b): 0.0 for link in scenario.links}
        # how far behind its schedule the runner fell: (seconds, what) at worst, by what it did
        self._lag: dict[str, tuple[float, str]] = {"event": (0.0, ""), "poll": (0.0, "")}
        self._applied: dict[int, float] = {}  # event index -> scenario time it was applied

    def go(self) -> RunResult:
        # the collector would walk every member's database again and again while the results'
        # millions of small lists and dicts are built (most of that time at 1,000 members)
        with cycle_collection_paused():
            try:
                return self._go()
            finally:
                self.net.close()

    def _go(self) -> RunResult:
        wall0 = time.monotonic()
        sc, net = self.scenario, self.net
        self.director.start(sc)
        net.start_clock()
        self._redial(self.convergence.changed("start", 0.0))
        end = sc.end_time
        for event in sorted(sc.events, key=lambda e: (e.at, e.index)):
            self._advance(min(event.at, end))
            if event.at > end:
                break
            topology = event.kind in TOPOLOGY_EVENTS
            if topology:
                self.convergence.close(next_at=event.at)
            self.director.apply(event)
            applied = net.now
            self._applied[event.index] = round(applied, 6)
            self._late("event", applied - event.at, f"{event.describe()} at {event.at:g}s")
            if topology:
                self._redial(self.convergence.changed(event.describe(), event.at, applied))
            if self.progress is not None:
                self.progress(net.now, end, event.describe())
        self._advance(end)
        self.convergence.close()
        return self._result(time.monotonic() - wall0)

    def _advance(self, t: float) -> None:
        net = self.net
        while (now := net.now) < t:
            target = min(t, now + net.poll_interval)
            net.advance_to(target)
            self._late("poll", net.now - target, f"{target:g}s")
            net.call(lambda: self.views.observe(net.members, net.now))
            self._redial(self.convergence.look())
            if self.progress is not None:
                self.progress(net.now, self.scenario.end_time, None)

    def _late(self, kind: str, seconds: float, what: str) -> None:
        if seconds > self._lag[kind][0]:
            self._lag[kind] = (seconds, what)

    def _timing(self) -> dict[str, Any]:
        """How well the run kept to its schedule, and whether that is within
        :data:`TIMING_TOLERANCE` (``ok``); ``worst`` says what fell furthest behind."""
        loop = self.net.loop_lag()
        (event, event_what), (poll, poll_at) = self._lag["event"], self._lag["poll"]
        whose = "the members' loop" if loop.member is None else f"member {loop.member}'s loop"
        lags = [
            (event, f"event {event_what} was applied {event * 1000:.0f} ms late"),
            (poll, f"the runner looked at the members {poll * 1000:.0f} ms late at {poll_at}"),
            (loop.seconds, f"{whose} ran a timer {loop.seconds * 1000:.0f} ms late at {loop.at}s"),
        ]
        worst = max(lags, key=lambda lag: lag[0])
        return {
            "ok": worst[0] <= TIMING_TOLERANCE,
            "tolerance": TIMING_TOLERANCE,
            "event_lag": round(event, 6),
            "poll_lag": round(poll, 6),
            "loop_lag": round(loop.seconds, 6),
            "worst": worst[1] if worst[0] > 0 else None,
        }

    def _redial(self, missing: list[Pair]) -> None:
        """Dial the scenario links that should be up and are not, each at most every
        :data:`REDIAL_EVERY` seconds (a dial under way is left to finish or fail)."""
        net, now = self.net, self.net.now
        due = [p for p in missing if now - self._dialled.get(p, -REDIAL_EVERY) >= REDIAL_EVERY]
        if due:
            self._dialled.update(dict.fromkeys(due, now))
            net.call(lambda: [net.connect(*pair) for pair in due])  # one call: the loop may be busy

    def _time(self, t: float) -> float:
        return round(self.net.scenario_time(t), 6)

    def _result(self, wall: float) -> RunResult:
        net, director, sc = self.net, self.director, self.scenario

        def snapshot():
            members = net.members
            tables = {m: members[m].routing_table() for m in sorted(members)}
            views = {m: [list(e) for e in sorted(members[m].view())] for m in sorted(members)}
            trips = {m: members[m].round_trips() for m in sorted(members)}
            return tables, views, established_links(members), trips

        tables, views, actual_links, trips = net.call(snapshot)
        truth_links = director.truth.current_links()
        warnings = director.warnings
        if sc.tls and self.backend == "sim":
            warnings.append("security.tls: TLS is real-only; the simulation ran without it")
        if [list(x) for x in actual_links] != [list(x) for x in truth_links]:
            warnings.append(
                f"established links {actual_links} differ from the scenario's "
                f"{truth_links} at the end"
            )
        counters: dict[str, Counter[str]] = {"frames": Counter(), "bytes": Counter()}
        for m in director.instances:
            counters["frames"].update(m.counters.frames_sent)
            counters["bytes"].update(m.counters.bytes_sent)
        faults = [f.to_dict() for f in net.faults]
        timing = self._timing()
        if not timing["ok"]:
            warnings.append(
                f"timing: the run fell behind its schedule: {timing['worst']} (tolerance "
                f"{TIMING_TOLERANCE * 1000:.0f} ms); its latencies and convergence times are "
                "not the protocol's"
            )
        warnings += [
            f"fault {f['kind']} {f['target']} at {f['at']}s hit nothing"
            for f in faults
            if not f["hit"]
        ]
        events = sorted(sc.events, key=lambda e: (e.at, e.index))
        result = RunResult.from_trace(
            self.tracer.events,
            time=self._time,
            ended=director.ended,
            scenario=sc.name,
            backend=self.backend,
            seed=sc.seed,
            members=sorted(tables),
            final_links=[list(x) for x in truth_links],
            routing_tables=tables,
            convergence=self.convergence.windows,
            expectations=[],
            counters={k: dict(sorted(v.items())) for k, v in counters.items()},
            duration=sc.end_time,
            wall_time=round(wall, 3),
            faults=faults,
            warnings=warnings,
            initial_links=[list(link.pair) for link in sc.links],
            positions={m: list(xy) for m, xy in sc.positions.items()},
            views=views,
            events=[
                {
                    "at": e.at,
                    "kind": e.kind,
                    "label": e.describe(),
                    "applied_at": self._applied.get(e.index),
                }
                for e in events
            ],
            timing_ok=timing["ok"],
            timing=timing,
            link_delays=link_delays(trips),
        )
        result.timeline = build_timeline(
            self.tracer.events, sc, result.convergence, result.messages, self.views, self._time
        )
        result.expectations = judge(
            sc.expect,
            result,
            self.convergence.oracle,
            reliable_deadline=self.config.reliable_deadline,
            time=self._time,
        )
        return result


def run(
    scenario: Scenario | str,
    backend: str = "sim",
    *,
    seed: int | None = None,
    time_scale: float = 1.0,
    progress: Progress | None = None,
    member_class: type[Member] = Member,
    placement: Any = None,
    members_per_process: int | None = None,
) -> RunResult:
    """Run a scenario (or a scenario file) on ``backend`` ("sim", "real" or "proc");
    ``member_class`` runs a variant of the protocol in place of :class:`Member`; ``progress``
    is told the scenario time as the run goes, and each event once it is applied. ``placement``
    (proc only) says where member processes run (see :mod:`peerlab.realnet.placement`), and
    ``members_per_process`` how many members each runs (by default one each up to 16
    processes, then shared: see :func:`peerlab.realnet.procnet.members_per_process_for`)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is not None:
        scenario = scenario.with_seed(seed)
    if time_scale <= 0:
        raise PeerlabError(f"time scale must be > 0, got {time_scale}")
    options = {"placement": placement, "members_per_process": members_per_process}
    options = {k: v for k, v in options.items() if v is not None}
    if options and backend != "proc":
        raise PeerlabError(f"placing members in processes is for the proc backend, not {backend!r}")
    return _Run(scenario, backend, time_scale, progress, member_class, options).go()


def link_delays(trips: dict[str, dict[str, float]]) -> dict[str, float]:
    """By link ``"a-b"``: half the shortest round trip either end measured on it."""
    out: dict[str, float] = {}
    for a, seen in trips.items():
        for b, took in seen.items():
            key = "-".join(sorted((a, b)))
            out[key] = round(min(out.get(key, took / 2), took / 2), 6)
    return dict(sorted(out.items()))


def latency_stats(result: RunResult) -> dict[str, float | None]:
    """Median and 99th percentile one-way delivery latency (seconds) of a run."""
    lat = sorted(m["delivered_at"] - m["sent_at"] for m in result.delivered)
    if not lat:
        return {"median": None, "p99": None}
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    return {"median": statistics.median(lat), "p99": p99}
