"""A validated scenario, as the runner, the campaigns and the explorer read it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from peerlab.member import MemberConfig
from peerlab.scenario.events import EVENTS

#: Member settings used for scenarios unless the scenario's ``member`` section overrides them:
#: a faster keepalive than the library default, so silent faults show within about a second,
#: and reliable messages retried on the scale of a scenario's links and given up after 3 s.
SCENARIO_MEMBER_DEFAULTS = {
    "keepalive_interval": 0.15,
    "dead_timeout": 0.6,
    "handshake_timeout": 2.0,
    "ack_timeout": 0.25,
    "reliable_deadline": 3.0,
}


@dataclass(frozen=True)
class LinkParams:
    """Latency, jitter (seconds), bandwidth (bits/s) and loss of a link."""

    latency: float = 0.005
    jitter: float = 0.0
    bandwidth: float = 100e6
    loss: float = 0.0


@dataclass(frozen=True)
class LinkSpec:
    """One scenario link between two members and its parameters."""

    a: str
    b: str
    params: LinkParams

    @property
    def pair(self) -> tuple[str, str]:
        """The link as a sorted pair."""
        return (self.a, self.b) if self.a < self.b else (self.b, self.a)


@dataclass(frozen=True)
class Event:
    """One timed event: ``kind`` is one of :data:`~peerlab.scenario.events.EVENT_KINDS`,
    ``args`` its value as plain data, ``index`` its place in the file's list."""

    at: float
    kind: str
    args: Any
    index: int
    line: int | None = None

    def describe(self) -> str:
        """A short human label, e.g. ``link_down a-b``."""
        return EVENTS[self.kind].label(self.args)


@dataclass(frozen=True)
class Expect:
    """What must hold for the run to pass."""

    delivered: float | None = None  # required delivered ratio (1.0 for "all")
    routes: str | None = None  # "shortest": every table matches networkx at the end
    converged_within: float | None = None  # seconds, after every topology event
    invariants: bool = False  # the checks of peerlab.invariants (what peerlab explore checks)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready for :func:`peerlab.runner.run`."""

    name: str
    description: str
    seed: int
    defaults: LinkParams
    members: tuple[str, ...]
    links: tuple[LinkSpec, ...]
    events: tuple[Event, ...]
    expect: Expect
    settle: float = 2.0
    duration: float | None = None
    member: dict[str, float] = field(default_factory=dict)
    source: str = "<scenario>"
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: what is legal but likely not what was meant, for ``peerlab check`` and the results
    warnings: tuple[str, ...] = ()
    #: "open", or "signed": members certified by a network authority made for the run
    security: str = "open"
    #: TLS on real links (secure mode only; the simulation has no bytes to encrypt)
    tls: bool = False

    @property
    def end_time(self) -> float:
        """When the run stops: ``duration`` if given, else the last event plus ``settle``."""
        if self.duration is not None:
            return self.duration
        last = max((e.at for e in self.events), default=0.0)
        return last + self.settle

    @property
    def everyone(self) -> tuple[str, ...]:
        """Every member the scenario ever has: the initial ones, then those that join."""
        joins = sorted((e for e in self.events if e.kind == "join"), key=lambda e: (e.at, e.index))
        return (*self.members, *(e.args["member"] for e in joins))

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario with another seed."""
        return replace(self, seed=seed)

    def link_params(self, a: str, b: str) -> LinkParams:
        """Parameters of the scenario link a-b (the defaults if it is not a scenario link)."""
        pair = (a, b) if a < b else (b, a)
        for link in self.links:
            if link.pair == pair:
                return link.params
        return self.defaults


def member_settings_config(member: dict[str, float]) -> MemberConfig:
    """The MemberConfig of a scenario's ``member`` settings over the scenario defaults;
    :class:`~peerlab.errors.ConfigError` if they do not make one."""
    return MemberConfig(**{**SCENARIO_MEMBER_DEFAULTS, **member})


def member_config(scenario: Scenario) -> MemberConfig:
    """The MemberConfig a scenario's members run with."""
    return member_settings_config(scenario.member)
