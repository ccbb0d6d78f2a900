"""Random fault schedules over a network, as scenarios: what ``peerlab explore`` runs.

A :class:`Schedule` is a base network (members, links, link and member settings) and a list of
timed steps written as scenario events. :meth:`Schedule.scenario` makes it a scenario that can
be run, written out and run again: steps that no longer make sense (a restart of a member that
is running, a link cut twice, an event naming a member that is gone) are left out, and a final
block undoes every fault still in force (heal, resume, restart, links up) before traffic and a
quiet period, after which the invariants are judged. Generation draws every choice from one
seeded ``random.Random``, so a seed gives the same schedule everywhere.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from peerlab.scenario import Scenario, load_scenario

#: What a schedule may do to the network; the undoing of each (link_up, heal, resume, restart)
#: comes with it.
FAULT_KINDS = (
    "link_down",
    "link_cut",
    "partition",
    "partition_one_way",
    "crash",
    "power_off",
    "pause",
    "restart",
    "leave",
    "join",
)
UNDO = {
    "link_down": "link_up",
    "link_cut": "link_up",
    "partition": "heal",
    "partition_one_way": "heal",
    "crash": "restart",
    "power_off": "restart",
    "pause": "resume",
}
TRAFFIC = "traffic"


@dataclass(frozen=True)
class Step:
    """One event of a schedule, as a scenario writes it: ``{at: ..., kind: value}``."""

    at: float
    kind: str
    value: Any


@dataclass(frozen=True)
class Base:
    """The network a schedule runs on, as scenario keys (``defaults``, ``member``, ...)."""

    name: str
    members: tuple[str, ...]
    links: tuple[tuple[str, str], ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    member: dict[str, Any] = field(default_factory=dict)
    link_params: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario: Scenario) -> Base:
        """The network of a scenario, without its events and expectations."""
        defaults = _params(scenario.defaults, None)
        params = {
            link.pair: _params(link.params, scenario.defaults)
            for link in scenario.links
            if link.params != scenario.defaults
        }
        return cls(
            scenario.name,
            scenario.members,
            tuple(link.pair for link in scenario.links),
            defaults,
            dict(scenario.member),
            params,
        )

    def without(self, member: str) -> Base:
        """The base with ``member`` and its links left out."""
        return replace(
            self,
            members=tuple(m for m in self.members if m != member),
            links=tuple(pair for pair in self.links if member not in pair),
            link_params={p: v for p, v in self.link_params.items() if member not in p},
        )

    def without_link(self, pair: tuple[str, str]) -> Base:
        """The base with one link left out."""
        return replace(
            self,
            links=tuple(p for p in self.links if p != pair),
            link_params={p: v for p, v in self.link_params.items() if p != pair},
        )


def _params(params, base) -> dict[str, Any]:
    """Link parameters as scenario keys (those that differ from ``base``, if given)."""
    out = {}
    for name in ("latency", "jitter", "bandwidth", "loss"):
        value = getattr(params, name)
        if base is None or value != getattr(base, name):
            out[name] = value
    return out


@dataclass(frozen=True)
class Schedule:
    """A base network and timed steps; :meth:`scenario` makes it runnable."""

    base: Base
    seed: int
    steps: tuple[Step, ...]
    faults_end: float
    quiet: float
    expect: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def with_steps(self, steps: Iterable[Step]) -> Schedule:
        """The same schedule with other steps."""
        return replace(self, steps=tuple(steps))

    def document(self) -> dict[str, Any]:
        """The schedule as a scenario document (what :meth:`write` writes)."""
        steps = _valid(self.base, self.steps)
        end = self.faults_end
        events = [{"at": s.at, s.kind: s.value} for s in steps]
        events += [{"at": end + 0.5, k: v} for k, v in _undo_all(self.base, steps)]
        events += [
            {"at": end + 1.0, TRAFFIC: {"count": 10, "size": 32}},
            {"at": end + 1.0, TRAFFIC: {"count": 10, "size": 32, "reliable": True}},
        ]
        links = [
            {"between": list(pair), **self.base.link_params[pair]}
            if pair in self.base.link_params
            else list(pair)
            for pair in self.base.links
        ]
        doc: dict[str, Any] = {
            "name": self.base.name,
            "description": self.description,
            "seed": self.seed,
            "defaults": self.base.defaults,
            **({"member": self.base.member} if self.base.member else {}),
            "members": list(self.base.members),
            "topology": {"links": links},
            "events": events,
            "duration": end + 1.0 + self.quiet,
        }
        if self.expect:
            doc["expect"] = self.expect
        return doc

    def text(self) -> str:
        """The scenario YAML."""
        return yaml.safe_dump(self.document(), sort_keys=False, default_flow_style=None, width=100)

    def scenario(self, label: str = "<schedule>") -> Scenario:
        """The schedule as a validated scenario."""
        return load_scenario(label, text=self.text())

    def write(self, path: str | Path) -> Path:
        """Write the scenario YAML to ``path``."""
        path = Path(path)
        path.write_text(self.text())
        return path

    def counts(self) -> tuple[int, int]:
        """(members, events) of the runnable scenario, the final undoing included."""
        return len(self.base.members), len(self.document()["events"])


class _State:
    """Who is running, paused, down or gone, and what is cut, as steps are replayed."""

    def __init__(self, base: Base) -> None:
        self.known = set(base.members)
        self.running = set(base.members)
        self.paused: set[str] = set()
        self.down: set[str] = set()
        self.links = set(base.links)
        self.cut: set[tuple[str, str]] = set()
        self.partitioned = False

    def live(self) -> list[str]:
        return sorted(self.running - self.paused)

    def allows(self, step: Step) -> bool:
        """Whether ``step`` makes sense now."""
        kind, value = step.kind, step.value
        if kind in ("link_down", "link_cut"):
            pair = _pair(*value)
            return pair in self.links and pair not in self.cut
        if kind == "link_up":
            return _pair(*value) in self.cut
        if kind in ("crash", "power_off", "leave"):
            return value in self.running and len(self.running) > 2
        if kind == "pause":
            return value in self.running and value not in self.paused
        if kind == "resume":
            return value in self.paused
        if kind == "restart":
            return value in self.down
        if kind == "join":
            return value["member"] not in self.known and set(value["connect"]) <= self.known
        if kind == "partition":
            groups = value["groups"] if isinstance(value, dict) else value
            return not self.partitioned and all(set(g) <= self.known and g for g in groups)
        if kind == "heal":
            return self.partitioned
        if kind == "send":
            return {value["from"], value["to"]} <= self.known
        return kind == TRAFFIC

    def apply(self, step: Step) -> None:
        kind, value = step.kind, step.value
        if kind in ("link_down", "link_cut"):
            self.cut.add(_pair(*value))
        elif kind == "link_up":
            self.cut.discard(_pair(*value))
        elif kind in ("crash", "power_off"):
            self.running.discard(value)
            self.paused.discard(value)
            self.down.add(value)
        elif kind == "leave":
            self.running.discard(value)
            self.paused.discard(value)
            self.links = {p for p in self.links if value not in p}
        elif kind == "pause":
            self.paused.add(value)
        elif kind == "resume":
            self.paused.discard(value)
        elif kind == "restart":
            self.down.discard(value)
            self.running.add(value)
        elif kind == "join":
            new = value["member"]
            self.known.add(new)
            self.running.add(new)
            self.links |= {_pair(new, c) for c in value["connect"]}
        elif kind == "partition":
            self.partitioned = True
        elif kind == "heal":
            self.partitioned = False


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _valid(base: Base, steps: Iterable[Step]) -> list[Step]:
    """The steps that make sense when replayed in time order on ``base``."""
    state = _State(base)
    out = []
    for step in sorted(steps, key=lambda s: s.at):
        if state.allows(step):
            state.apply(step)
            out.append(step)
    return out


def _undo_all(base: Base, steps: list[Step]) -> list[tuple[str, Any]]:
    """Events that end every fault still in force after ``steps``."""
    state = _State(base)
    for step in steps:
        state.apply(step)
    undo: list[tuple[str, Any]] = []
    if state.partitioned:
        undo.append(("heal", True))
    undo += [("resume", m) for m in sorted(state.paused)]
    undo += [("restart", m) for m in sorted(state.down)]
    undo += [("link_up", list(p)) for p in sorted(state.cut)]
    return undo


def generate(
    base: Base,
    seed: int,
    *,
    events: int = 20,
    faults: Iterable[str] = FAULT_KINDS,
    faults_end: float = 8.0,
    quiet: float = 6.0,
) -> Schedule:
    """A random schedule of about ``events`` faults (and their undoing) with plain and reliable
    traffic among them, drawn from ``seed``, ending by ``faults_end`` seconds."""
    rng = random.Random(f"explore:{seed}")
    kinds = [k for k in FAULT_KINDS if k in set(faults)]
    state = _State(base)
    times = sorted(round(rng.uniform(0.3, faults_end), 3) for _ in range(events))
    steps: list[Step] = []
    joined = 0
    for at in times:
        if rng.random() < 0.25:
            step = Step(
                at,
                TRAFFIC,
                {"count": rng.randint(1, 6), "size": 32, "reliable": rng.random() < 0.5},
            )
        else:
            options = _options(state, kinds, rng, f"j{joined + 1}")
            if not options:
                continue
            kind, value = rng.choice(options)
            joined += kind == "join"
            step = Step(at, kind, value)
        state.apply(step)
        steps.append(step)
    return Schedule(base, seed, tuple(steps), faults_end, quiet)


def _options(
    state: _State, kinds: list[str], rng: random.Random, new_id: str
) -> list[tuple[str, Any]]:
    """One candidate step of each kind that makes sense now (undoing included)."""
    live = state.live()
    up = sorted(
        p for p in state.links - state.cut if p[0] in state.running or p[1] in state.running
    )
    out: list[tuple[str, Any]] = []
    for kind in kinds:
        if kind in ("link_down", "link_cut") and up:
            out.append((kind, list(rng.choice(up))))
        elif kind.startswith("partition") and not state.partitioned and len(live) >= 2:
            members = sorted(state.running)
            rng.shuffle(members)
            cut = rng.randint(1, len(members) - 1)
            groups = [sorted(members[:cut]), sorted(members[cut:])]
            value: Any = groups if kind == "partition" else {"groups": groups, "one_way": True}
            out.append(("partition", value))
        elif kind in ("crash", "power_off", "leave") and len(state.running) > 2:
            out.append((kind, rng.choice(sorted(state.running))))
        elif kind == "pause" and live:
            out.append((kind, rng.choice(live)))
        elif kind == "join" and live:
            connect = rng.sample(live, min(len(live), rng.randint(1, 2)))
            out.append((kind, {"member": new_id, "connect": sorted(connect)}))
    if "link_down" in kinds or "link_cut" in kinds:
        out += [("link_up", list(p)) for p in sorted(state.cut)[:1]]
    if state.partitioned:
        out.append(("heal", True))
    out += [("resume", m) for m in sorted(state.paused)[:1]]
    out += [("restart", m) for m in sorted(state.down)[:1]]
    return out
