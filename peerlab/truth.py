"""What a scenario says should be, event by event, and the events applied to a network.

:class:`Truth` holds the members that should be running and the links that should be up; the
tables are judged against it. :class:`Director` applies each scenario event to both, through
one table of handlers by event kind (:data:`Director.HANDLERS`, which a test holds to the
scenario's event-kind table).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from peerlab import trace as ev
from peerlab.linkmodel import LinkModel
from peerlab.network import Network
from peerlab.oracle import Oracle
from peerlab.scenario import Event, LinkParams, Scenario
from peerlab.trace import Tracer

Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    """A link as a sorted pair."""
    return (a, b) if a < b else (b, a)


@dataclass
class Truth:
    """Which members should run and which links should be up, as the scenario says so far."""

    alive: set[str]
    links: set[Pair]
    groups: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)  # alive, but not expected to answer

    @classmethod
    def of(cls, scenario: Scenario) -> Truth:
        """The truth at the start of ``scenario``."""
        return cls(set(scenario.members), {link.pair for link in scenario.links})

    def current_links(self) -> list[Pair]:
        """The links that should be up now: both ends answering, not split by a partition."""
        g, up = self.groups, self.alive - self.paused
        return sorted(
            (a, b)
            for a, b in self.links
            if a in up and b in up and (a not in g or b not in g or g[a] == g[b])
        )

    def peers_of(self, member: str) -> list[str]:
        """The members ``member`` should be linked to now."""
        return sorted(b if a == member else a for a, b in self.current_links() if member in (a, b))

    def oracle(self) -> Oracle:
        """networkx's shortest paths over the links that should be up."""
        return Oracle(sorted(self.alive - self.paused), self.current_links())


class Director:
    """Applies a scenario's events to a network and to its :class:`Truth`, and sends its
    messages; keeps the warnings, the member instances and the lives that ended."""

    def __init__(self, scenario: Scenario, net: Network, tracer: Tracer) -> None:
        self.net = net
        self.tracer = tracer
        self.truth = Truth.of(scenario)
        self.rng = random.Random(f"{scenario.seed}:traffic")
        self.warnings: list[str] = list(scenario.warnings)
        self.instances: list[Any] = []  # every member life, for its counters
        self.ended: set[tuple[str, int]] = set()  # (member, incarnation) of lives that ended
        self._down_sends = 0
        self._scenario = scenario
        self._link_params: dict[Pair, LinkParams] = {}  # as set_link events left them

    def start(self, scenario: Scenario) -> None:
        """Add the scenario's members and dial its links, all at once in the members' context
        (in the simulator and the real backend, no member runs before the others are there;
        proc members run as their processes are started, and dial once all are)."""
        net = self.net

        def build() -> None:
            for m in scenario.members:
                self.instances.append(net.add_member(m))
            for link in scenario.links:
                net.connect(link.a, link.b)

        net.call(build)

    def apply(self, event: Event) -> None:
        """Apply one event (a kind of :data:`HANDLERS`)."""
        self.HANDLERS[event.kind](self, event)

    # --- messages --------------------------------------------------------------------------

    def _send_event(self, event: Event) -> None:
        a = event.args
        self.send(a["from"], a["to"], a["payload"].encode(), a["reliable"], event.at)

    def _traffic(self, event: Event) -> None:
        a = event.args
        live = sorted(self.net.members)
        if len(live) < 2:
            self.warnings.append(f"traffic at {event.at}s: fewer than two live members")
            return
        payload, reliable = bytes(a["size"]), a["reliable"]
        pairs = [self.rng.sample(live, 2) for _ in range(a["count"])]
        self.net.send_burst([(src, dst, payload, reliable) for src, dst in pairs])

    def send(self, src: str, dst: str, payload: bytes, reliable: bool, at: float) -> None:
        """Have ``src`` send; a sender not running is traced as sending and dropping at once
        (``sender_down``), so the results hold every message the scenario sent."""
        net = self.net
        if src in net.members:
            net.send_burst([(src, dst, payload, reliable)])
            return
        self._down_sends += 1
        msg_id = f"{src}:down:{self._down_sends}"
        t = net.call(net.member_clock)
        fields = {"msg_id": msg_id, "src": src, "dst": dst}
        self.tracer.emit(t, src, ev.SEND, **fields, size=len(payload), reliable=reliable)
        self.tracer.emit(t, src, ev.DROP, **fields, path=[src], reason="sender_down")

    # --- topology ----------------------------------------------------------------------------

    def _link_down(self, event: Event) -> None:
        self.truth.links.discard(pair(*event.args))
        self.net.link_down(*event.args, silent=event.kind == "link_cut")

    def _link_up(self, event: Event) -> None:
        self.truth.links.add(pair(*event.args))
        self.net.link_up(*event.args, connect=False)  # the runner dials what should be up

    def _ends(self, event: Event) -> None:  # crash, power_off, leave
        member, truth = event.args, self.truth
        if not self._running(event, member):
            return
        truth.alive.discard(member)
        truth.paused.discard(member)
        if event.kind == "leave":
            truth.links = {p for p in truth.links if member not in p}
        self.ended.add((member, self.net.incarnations[member]))
        getattr(self.net, event.kind)(member)

    def _restart(self, event: Event) -> None:
        member, truth = event.args, self.truth
        if member in truth.alive:
            self.warnings.append(f"restart at {event.at}s: {member} is already running")
            return
        truth.alive.add(member)
        self.net.restart(member, join=truth.peers_of(member))
        self.instances.append(self.net.members[member])

    def _join(self, event: Event) -> None:
        new, connect, truth = event.args["member"], event.args["connect"], self.truth
        truth.alive.add(new)
        truth.links.update(pair(new, c) for c in connect)
        self.net.join(new, [c for c in connect if c in truth.alive])
        self.instances.append(self.net.members[new])

    def _pause_or_resume(self, event: Event) -> None:
        member, truth, pausing = event.args, self.truth, event.kind == "pause"
        if not self._running(event, member):
            return
        if (member in truth.paused) == pausing:
            state = "paused already" if pausing else "not paused"
            self.warnings.append(f"{event.kind} at {event.at}s: {member} is {state}")
            return
        (truth.paused.add if pausing else truth.paused.discard)(member)
        getattr(self.net, event.kind)(member)

    def _partition(self, event: Event) -> None:
        groups = event.args["groups"]
        self.truth.groups = {m: i for i, g in enumerate(groups) for m in g}
        self.net.partition(groups, one_way=event.args["one_way"])

    def _set_link(self, event: Event) -> None:
        a, b = event.args["between"]
        key = pair(a, b)
        params = self._link_params.get(key) or self._scenario.link_params(a, b)
        given = {k: v for k, v in event.args.items() if k != "between"}
        self._link_params[key] = params = replace(params, **given)
        self.net.set_link(a, b, LinkModel.of(params))

    def _heal(self, event: Event) -> None:
        self.truth.groups = {}
        self.net.heal()

    def _running(self, event: Event, member: str) -> bool:
        if member in self.truth.alive:
            return True
        self.warnings.append(f"{event.describe()} at {event.at}s: {member} is not running")
        return False

    #: The handler of each event kind.
    HANDLERS: ClassVar[dict[str, Callable[[Director, Event], None]]] = {
        "send": _send_event,
        "traffic": _traffic,
        "link_down": _link_down,
        "link_cut": _link_down,
        "link_up": _link_up,
        "crash": _ends,
        "power_off": _ends,
        "leave": _ends,
        "restart": _restart,
        "join": _join,
        "pause": _pause_or_resume,
        "resume": _pause_or_resume,
        "partition": _partition,
        "heal": _heal,
        "set_link": _set_link,
    }
