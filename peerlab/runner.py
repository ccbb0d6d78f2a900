"""Run a scenario on a backend and collect a :class:`~peerlab.results.RunResult`.

``run(scenario, backend)`` is a plain function of picklable inputs and outputs, so sweeps can fan
it out over processes. Backends are found through :data:`BACKENDS` and imported only when used.
"""

from __future__ import annotations

import importlib
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peerlab import trace as ev
from peerlab.collector import cycle_collection_paused
from peerlab.errors import PeerlabError
from peerlab.invariants import INVARIANTS, violations
from peerlab.member import Member, established_links
from peerlab.oracle import Oracle
from peerlab.results import RunResult
from peerlab.scenario import TOPOLOGY_EVENTS, Event, Scenario, load_scenario, member_config
from peerlab.timeline import ViewRecorder, build_timeline
from peerlab.trace import Tracer

#: backend name -> "module:DriverClass"
BACKENDS: dict[str, str] = {
    "sim": "peerlab.sim.backend:SimDriver",
    "real": "peerlab.realnet.backend:RealDriver",
    "proc": "peerlab.realnet.backend:ProcDriver",  # the real backend, one OS process per member
}


#: Told ``(scenario time now, scenario end time, the event just applied or None)`` as a run goes.
Progress = Callable[[float, float, str | None], None]

#: How often the runner dials again a scenario link that should be up and is not (seconds).
REDIAL_EVERY = 0.25


class UnknownBackend(PeerlabError):
    """A backend name that is not in :data:`BACKENDS`."""


def driver_class(name: str):
    """The driver class registered for backend ``name``."""
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r} (expected one of: {', '.join(BACKENDS)})")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass
class _Truth:
    """Which members are alive and which links should be up, as the scenario says."""

    alive: set[str]
    links: set[tuple[str, str]]
    groups: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)  # alive, but not expected to answer

    def current_links(self) -> list[tuple[str, str]]:
        g, up = self.groups, self.alive - self.paused
        return sorted(
            (a, b)
            for a, b in self.links
            if a in up and b in up and (a not in g or b not in g or g[a] == g[b])
        )

    def oracle(self) -> Oracle:
        return Oracle(sorted(self.alive - self.paused), self.current_links())


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _message(msg_id: str, src: str, dst: str, at: float, reliable: bool) -> dict[str, Any]:
    """A message record of the results, as it starts: sent, nothing known of it yet."""
    return {
        "id": msg_id,
        "src": src,
        "dst": dst,
        "sent_at": at,
        "delivered_at": None,
        "path": [src],
        "drop_reason": None,
        "reliable": reliable,
        "acked_at": None,
        "deliveries": 0,
    }


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        backend: str,
        time_scale: float,
        progress: Progress | None,
        member_class: type[Member] = Member,
    ) -> None:
        self.scenario = scenario
        self.tracer = Tracer(kinds=ev.KINDS - ev.CHATTY_KINDS)
        self.config = member_config(scenario)
        self.driver = driver_class(backend)(
            scenario, self.config, self.tracer, time_scale, member_class
        )
        self.net = self.driver.net
        self.backend = backend
        self.progress = progress
        self.rng = random.Random(f"{scenario.seed}:traffic")
        self.truth = _Truth(set(scenario.members), {link.pair for link in scenario.links})
        self.instances: list[Member] = []
        self.convergence: list[dict[str, Any]] = []
        self.pending: dict[str, Any] | None = None
        self._version: tuple | None = None
        self._verified: dict[str, tuple] = {}  # member -> state its table was last found right in
        self.oracle: Oracle | None = None
        self.warnings: list[str] = list(scenario.warnings)
        self.extra_messages: list[dict[str, Any]] = []
        self.ended: set[tuple[str, int]] = set()  # (member, incarnation) of lives that ended
        self._dialled: dict[tuple[str, str], float] = {}  # link -> when the runner last dialled it
        joins = sum(1 for e in scenario.events if e.kind == "join")
        self.views = ViewRecorder(len(scenario.members) + joins)

    # --- the timeline --------------------------------------------------------------------

    def go(self) -> RunResult:
        # the collector would walk every member's database again and again while the results'
        # millions of small lists and dicts are built (most of that time at 1,000 members)
        with cycle_collection_paused():
            return self._go()

    def _go(self) -> RunResult:
        wall0 = time.monotonic()
        sc = self.scenario
        try:
            for m in sc.members:
                self._track(self.net.add_member(m))
            for link in sc.links:
                self.net.connect(link.a, link.b)
            self.driver.start_clock()
            self._topology_changed("start", 0.0)
            end = sc.end_time
            events = sorted(sc.events, key=lambda e: (e.at, e.index))
            for event in events:
                self._advance(min(event.at, end))
                if event.at > end:
                    break
                self._apply(event)
                if self.progress is not None:
                    self.progress(self.driver.now(), end, event.describe())
            self._advance(end)
            self._close_pending()
            return self._result(time.monotonic() - wall0)
        finally:
            self.driver.close()

    def _advance(self, t: float) -> None:
        step = self.driver.poll_interval
        while (now := self.driver.now()) < t:
            self.driver.advance_to(min(t, now + step))
            self.driver.call(lambda: self.views.observe(self.net.members, self.driver.now()))
            self._observe()
            if self.progress is not None:
                self.progress(self.driver.now(), self.scenario.end_time, None)

    def _observe(self) -> None:
        """Track whether the tables match the truth, and keep the scenario's links dialled."""
        if self.pending is None:
            return
        oracle = self.oracle
        assert oracle is not None

        def look() -> tuple[tuple, bool | None, list[tuple[str, str]]]:
            members = self.net.members
            version = tuple(
                (mid, id(m), m.counters.route_computations, m.routes_pending, len(m.neighbours))
                for mid, m in members.items()
            )
            missing = [
                (a, b)
                for a, b in self.truth.current_links()
                if a in members and b in members and b not in members[a].neighbours
            ]
            if version == self._version:
                return version, None, missing
            # a table already found right against this oracle, and not recomputed since, is
            # still right: only members whose table changed are checked again
            verified = self._verified
            agrees = True
            for state in version:
                mid, _, _, pending, _ = state
                if verified.get(mid) == state:
                    continue
                if pending or not oracle.agrees({mid: members[mid].routes}):
                    agrees = False
                    break
                verified[mid] = state
            return version, agrees, missing

        version, agrees, missing = self.driver.call(look)
        self._redial(missing)
        if agrees is None:
            return
        self._version = version
        if agrees and self.pending["converged_at"] is None:
            self.pending["converged_at"] = round(self.driver.now(), 6)
        elif not agrees:
            self.pending["converged_at"] = None

    def _redial(self, missing: list[tuple[str, str]]) -> None:
        """Dial the scenario links that should be up and are not, each at most every
        :data:`REDIAL_EVERY` seconds (a dial under way is left to finish or fail)."""
        now = self.driver.now()
        dialled = self._dialled
        for pair in missing:
            if now - dialled.get(pair, -REDIAL_EVERY) >= REDIAL_EVERY:
                dialled[pair] = now
                self.net.connect(*pair)

    def _topology_changed(self, label: str, at: float) -> None:
        self._close_pending()
        self.oracle = self.truth.oracle()
        self._version = None
        self._verified = {}
        self.pending = {"event": label, "at": at, "converged_at": None, "status": "pending"}
        self.convergence.append(self.pending)
        self._observe()

    def _close_pending(self, next_at: float | None = None) -> None:
        """End the current convergence window: converged if the tables match at its end;
        superseded if the next topology event came before the network could be judged."""
        if self.pending is not None:
            self._version = None
            self._observe()
            bound = self.scenario.expect.converged_within
            if self.pending["converged_at"] is not None:
                self.pending["status"] = "converged"
            elif next_at is not None and (bound is None or next_at - self.pending["at"] < bound):
                self.pending["status"] = "superseded"
            else:
                self.pending["status"] = "not_converged"
            self.pending = None

    def _track(self, member: Member) -> None:
        self.instances.append(member)

    def _live(self) -> list[str]:
        return sorted(self.net.members)

    def _apply(self, event: Event) -> None:
        kind, args, truth, net = event.kind, event.args, self.truth, self.net
        if kind in TOPOLOGY_EVENTS:
            self._close_pending(next_at=event.at)
        if kind == "send":
            self._send(
                args["from"], args["to"], args["payload"].encode(), args["reliable"], event.at
            )
            return
        if kind == "traffic":
            live = self._live()
            if len(live) < 2:
                self.warnings.append(f"traffic at {event.at}s: fewer than two live members")
                return
            payload = bytes(args["size"])
            for _ in range(args["count"]):
                src, dst = self.rng.sample(live, 2)
                self._send(src, dst, payload, args["reliable"], event.at)
            return
        if kind in ("link_down", "link_cut"):
            truth.links.discard(_pair(*args))
            net.link_down(*args, silent=kind == "link_cut")
        elif kind == "link_up":
            truth.links.add(_pair(*args))
            net.link_up(*args, connect=False)
        elif kind in ("crash", "power_off"):
            if args not in truth.alive:
                self.warnings.append(f"{event.describe()} at {event.at}s: {args} is not running")
                return
            truth.alive.discard(args)
            truth.paused.discard(args)
            self._ended(args)
            net.crash(args) if kind == "crash" else net.power_off(args)
        elif kind == "restart":
            if args in truth.alive:
                self.warnings.append(f"restart at {event.at}s: {args} is already running")
                return
            truth.alive.add(args)
            peers = sorted(
                b if a == args else a for a, b in truth.current_links() if args in (a, b)
            )
            net.restart(args, join=peers)
            self._track(net.members[args])
        elif kind == "join":
            new = args["member"]
            truth.alive.add(new)
            truth.links.update(_pair(new, c) for c in args["connect"])
            net.join(new, [c for c in args["connect"] if c in truth.alive])
            self._track(net.members[new])
        elif kind == "leave":
            if args not in truth.alive:
                self.warnings.append(f"leave at {event.at}s: {args} is not running")
                return
            truth.alive.discard(args)
            truth.paused.discard(args)
            truth.links = {p for p in truth.links if args not in p}
            self._ended(args)
            net.leave(args)
        elif kind in ("pause", "resume"):
            if args not in truth.alive or (args in truth.paused) == (kind == "pause"):
                state = (
                    "not running"
                    if args not in truth.alive
                    else ("paused already" if kind == "pause" else "not paused")
                )
                self.warnings.append(f"{kind} at {event.at}s: {args} is {state}")
                return
            (truth.paused.add if kind == "pause" else truth.paused.discard)(args)
            net.pause(args) if kind == "pause" else net.resume(args)
        elif kind == "partition":
            truth.groups = {m: i for i, g in enumerate(args["groups"]) for m in g}
            net.partition(args["groups"], one_way=args["one_way"])
        elif kind == "heal":
            truth.groups = {}
            net.heal()
        if kind in TOPOLOGY_EVENTS:
            self._topology_changed(event.describe(), event.at)

    def _ended(self, member: str) -> None:
        """Note that the current life of ``member`` ends now."""
        self.ended.add((member, self.net.incarnations[member]))

    def _send(self, src: str, dst: str, payload: bytes, reliable: bool, at: float) -> None:
        if src not in self.net.members:
            record = _message(f"{src}:down:{len(self.extra_messages) + 1}", src, dst, at, reliable)
            record["drop_reason"] = "sender_down"
            self.extra_messages.append(record)
            return
        self.driver.call(lambda: self.net.members[src].send(dst, payload, reliable=reliable))

    # --- results -------------------------------------------------------------------------

    def _time(self, t: float) -> float:
        convert = getattr(self.driver, "to_scenario_time", None)
        return round(convert(t) if convert else t, 6)

    def _messages(self) -> list[dict[str, Any]]:
        """One record per message sent, in the order sent, with what became of it."""
        messages: dict[str, dict[str, Any]] = {}
        for e in sorted(self.tracer.events, key=lambda e: e.time):
            f = e.fields
            m = messages.get(f["msg_id"]) if "msg_id" in f else None
            if e.kind == ev.SEND:
                messages[f["msg_id"]] = _message(
                    f["msg_id"], f["src"], f["dst"], self._time(e.time), f.get("reliable", False)
                )
            elif m is None:
                continue
            elif e.kind == ev.DELIVER:
                m["deliveries"] += 1
                if m["delivered_at"] is None:
                    m.update(
                        delivered_at=self._time(e.time), path=list(f["path"]), drop_reason=None
                    )
            elif e.kind == ev.DROP and not f.get("ack"):
                if m["delivered_at"] is None:  # the last word: a relay's drop, then the sender's
                    m.update(drop_reason=f["reason"], path=list(f.get("path", m["path"])))
            elif e.kind == ev.ACKED:
                m["acked_at"] = self._time(e.time)
        out = list(messages.values()) + self.extra_messages
        for m in out:
            if m["delivered_at"] is None and m["drop_reason"] is None:
                m["drop_reason"] = self._fate(m)
        return out

    def _fate(self, m: dict[str, Any]) -> str:
        """Why a message neither arrived nor was reported dropped: its sender's life ended
        first, or (reliable) its sender was still retrying at the end, or it was lost."""
        src, life, _ = m["id"].rsplit(":", 2)
        if life.isdigit() and (src, int(life)) in self.ended:
            return "sender_stopped"
        return "unsettled" if m["reliable"] and m["acked_at"] is None else "lost"

    def _expectations(self, messages, tables) -> list[dict[str, Any]]:
        exp = self.scenario.expect
        out = []
        if exp.delivered is not None:
            sent = len(messages)
            got = sum(1 for m in messages if m["delivered_at"] is not None)
            ratio = got / sent if sent else 1.0
            reasons = Counter(m["drop_reason"] for m in messages if m["delivered_at"] is None)
            detail = f"{got}/{sent} delivered ({ratio:.1%}), need {exp.delivered:.1%}"
            if reasons:
                detail += "; drops: " + ", ".join(f"{r} x{n}" for r, n in sorted(reasons.items()))
            out.append({"name": "delivered", "ok": ratio >= exp.delivered, "detail": detail})
        if exp.routes == "shortest":
            oracle = self.oracle if self.oracle is not None else self.truth.oracle()
            errors = oracle.errors(tables, limit=5)
            detail = "every table matches networkx BFS" if not errors else "; ".join(errors)
            out.append({"name": "routes", "ok": not errors, "detail": detail})
        if exp.converged_within is not None:
            bad = []
            for c in self.convergence:
                if c["status"] == "superseded":
                    continue
                took = None if c["converged_at"] is None else c["converged_at"] - c["at"]
                if took is None or took > exp.converged_within:
                    shown = "never" if took is None else f"{took:.3f}s"
                    bad.append(f"{c['event']} at {c['at']}s: {shown}")
            detail = (
                f"every topology event converged within {exp.converged_within}s"
                if not bad
                else "too slow: " + "; ".join(bad)
            )
            out.append({"name": "converged_within", "ok": not bad, "detail": detail})
        return out

    def _result(self, wall: float) -> RunResult:
        def snapshot():
            members = self.net.members
            tables = {m: members[m].routing_table() for m in sorted(members)}
            views = {m: [list(e) for e in sorted(members[m].view())] for m in sorted(members)}
            return tables, views, established_links(members)

        tables, views, actual_links = self.driver.call(snapshot)
        truth_links = self.truth.current_links()
        if [list(x) for x in actual_links] != [list(x) for x in truth_links]:
            self.warnings.append(
                f"established links {actual_links} differ from the scenario's "
                f"{truth_links} at the end"
            )
        counters: dict[str, dict[str, int]] = {"frames": Counter(), "bytes": Counter()}
        for m in self.instances:
            counters["frames"].update(m.counters.frames_sent)
            counters["bytes"].update(m.counters.bytes_sent)
        faults = self.driver.faults()
        for f in faults:
            if not f["hit"]:
                self.warnings.append(f"fault {f['kind']} {f['target']} at {f['at']}s hit nothing")
        messages = self._messages()
        result = RunResult(
            scenario=self.scenario.name,
            backend=self.backend,
            seed=self.scenario.seed,
            members=sorted(tables),
            final_links=[list(x) for x in truth_links],
            routing_tables=tables,
            messages=messages,
            convergence=self.convergence,
            expectations=self._expectations(messages, tables),
            counters={k: dict(sorted(v.items())) for k, v in counters.items()},
            duration=self.scenario.end_time,
            wall_time=round(wall, 3),
            faults=faults,
            warnings=self.warnings,
            trace=list(self.tracer.events),
            initial_links=[list(link.pair) for link in self.scenario.links],
            positions={m: list(xy) for m, xy in self.scenario.positions.items()},
            views=views,
            events=[
                {"at": e.at, "kind": e.kind, "label": e.describe()}
                for e in sorted(self.scenario.events, key=lambda e: (e.at, e.index))
            ],
            timeline=build_timeline(
                self.tracer.events,
                self.scenario,
                self.convergence,
                messages,
                self.views,
                self._time,
            ),
        )
        if self.scenario.expect.invariants:
            result.expectations.extend(self._invariants(result))
        return result

    def _invariants(self, result: RunResult) -> list[dict[str, Any]]:
        """One expectation per invariant of :mod:`peerlab.invariants`."""
        bound = self.scenario.expect.converged_within
        found = violations(
            result, reliable_deadline=self.config.reliable_deadline, bound=bound, time=self._time
        )
        names = [n for n in INVARIANTS if n != "convergence" or bound is not None]
        return [
            {
                "name": f"invariant {name}",
                "ok": not (bad := [v.detail for v in found if v.invariant == name]),
                "detail": "; ".join(bad) if bad else "holds",
            }
            for name in names
        ]


def run(
    scenario: Scenario | str,
    backend: str = "sim",
    *,
    seed: int | None = None,
    time_scale: float = 1.0,
    progress: Progress | None = None,
    member_class: type[Member] = Member,
) -> RunResult:
    """Run a scenario (or a scenario file) on ``backend`` ("sim", "real" or "proc");
    ``member_class`` runs a variant of the protocol in place of :class:`Member`; ``progress``
    is told the scenario time as the run goes, and each event once it is applied."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is not None:
        scenario = scenario.with_seed(seed)
    if time_scale <= 0:
        raise PeerlabError(f"time scale must be > 0, got {time_scale}")
    return _Run(scenario, backend, time_scale, progress, member_class).go()


def latency_stats(result: RunResult) -> dict[str, float | None]:
    """Median and 99th percentile one-way delivery latency (seconds) of a run."""
    lat = sorted(m["delivered_at"] - m["sent_at"] for m in result.delivered)
    if not lat:
        return {"median": None, "p99": None}
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    return {"median": statistics.median(lat), "p99": p99}
