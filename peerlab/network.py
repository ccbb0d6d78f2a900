"""The seam between the runner and a world of members: the :class:`Network` every backend is.

Three backends implement it: ``sim`` (every member in one SimPy simulation), ``real`` (every
member on loopback TCP in this process) and ``proc`` (every member its own OS process). The
runner, the fault conformance suite (``tests/conformance/test_faults.py``) and anything else
that drives a network speak only this protocol, as SimPy's two environments share one
``BaseEnvironment``. A fault means the same in every backend and returns one
:class:`~peerlab.faults.FaultReport`.

Backends are found through :data:`BACKENDS` and imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from peerlab.errors import PeerlabError
from peerlab.faults import FaultReport
from peerlab.linkmodel import LinkModel
from peerlab.routing import Route

if TYPE_CHECKING:
    from peerlab.member import Member, MemberConfig
    from peerlab.scenario import Scenario
    from peerlab.trace import Tracer

T = TypeVar("T")

#: backend name -> "module:NetworkClass"
BACKENDS: dict[str, str] = {
    "sim": "peerlab.sim.network:SimNetwork",
    "real": "peerlab.realnet.network:TcpNetwork",
    "proc": "peerlab.realnet.procnet:ProcessNetwork",  # the real backend, a process a member
}


class UnknownBackend(PeerlabError):
    """A backend name that is not in :data:`BACKENDS`."""


@dataclass(frozen=True)
class LoopLag:
    """The worst stall of the loops members run on, since the clock started: how late a
    member's timer ran (``seconds``, scenario time), on whose loop (``member``; None for the
    one loop every member shares), and when it was due (``at``, scenario time)."""

    seconds: float = 0.0
    member: str | None = None
    at: float | None = None


class RunningMember(Protocol):
    """What a network lets its driver read of a running member (a :class:`Member`, or the
    parent's picture of one in another process)."""

    @property
    def neighbours(self) -> list[str]:
        """Ids of the members it holds an established connection with, sorted."""

    @property
    def routes(self) -> Mapping[str, Route]:
        """Its next-hop table."""

    @property
    def routes_pending(self) -> bool:
        """Whether a route computation is due."""

    def routing_table(self) -> dict[str, dict[str, Any]]:
        """Its table as JSON-ready dicts."""

    def view(self) -> set[tuple[str, str]]:
        """The two-way links it believes in."""

    def send(self, dst: str, payload: bytes = b"", *, reliable: bool = False) -> str:
        """Send a message; returns its id."""


@runtime_checkable
class Network(Protocol):
    """A world of members a runner drives: build it, fault it, run its clock, read it.

    Times are *scenario seconds*: 0 when :meth:`start_clock` is called (simulated seconds in
    the simulator; wall-clock seconds divided by the time scale in the real backends).
    Members' own clocks, which their trace events carry, convert with :meth:`scenario_time`.
    Everything that touches members runs in their context through :meth:`call`.
    """

    #: How often (scenario seconds) a driver looks at the members between events.
    poll_interval: float
    #: The running members, by id.
    members: Mapping[str, Any]
    #: The incarnation of each member's latest life.
    incarnations: Mapping[str, int]
    #: What every fault injected so far did, in order.
    faults: list[FaultReport]
    #: Where the members report their trace events.
    tracer: Tracer

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        *,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] | None = None,
    ) -> Network:
        """A network for ``scenario``'s members, with its link parameters."""

    # --- building ------------------------------------------------------------------------
    def add_member(self, member_id: str, *, join: Iterable[str] = ()) -> Any:
        """Create and start a member that dials the members ``join``."""

    def connect(self, a: str, b: str) -> None:
        """Have ``a`` dial ``b``."""

    def send_burst(self, sends: Sequence[tuple[str, str, bytes, bool]]) -> None:
        """Have each running ``(src, dst, payload, reliable)`` send, all at once."""

    def set_link(self, a: str, b: str, model: LinkModel) -> None:
        """Time bytes between ``a`` and ``b`` by ``model`` from now on, on the connections
        they hold and on those they open later."""

    # --- faults: each returns what it did ------------------------------------------------
    def link_down(self, a: str, b: str, *, silent: bool = False) -> FaultReport:
        """Cut the path between a and b: closed (both told at once) or ``silent``."""

    def link_up(self, a: str, b: str, *, connect: bool = True) -> FaultReport:
        """Restore the path between a and b and (by default) have a dial b."""

    def partition(self, groups: Sequence[Iterable[str]], *, one_way: bool = False) -> FaultReport:
        """Hold back bytes between groups (``one_way``: only from the first) until heal."""

    def heal(self) -> FaultReport:
        """End the partition; held bytes go on."""

    def crash(self, member_id: str) -> FaultReport:
        """Kill a member's process: its connections reset, its state lost."""

    def power_off(self, member_id: str) -> FaultReport:
        """Switch a member's machine off: nobody is told; peers notice by keepalive."""

    def pause(self, member_id: str) -> FaultReport:
        """Stop a member processing anything until :meth:`resume`; its work waits."""

    def resume(self, member_id: str) -> FaultReport:
        """Let a paused member go on with what waited."""

    def restart(self, member_id: str, *, join: Iterable[str] = ()) -> FaultReport:
        """Bring a crashed or powered-off member back: a new life, same id and address."""

    def leave(self, member_id: str) -> FaultReport:
        """Graceful leave: a final advert and Bye to every neighbour, then gone."""

    def join(self, member_id: str, connect: Iterable[str]) -> FaultReport:
        """Start a new member that dials ``connect``."""

    # --- time and context ----------------------------------------------------------------
    @property
    def now(self) -> float:
        """Scenario seconds since :meth:`start_clock`."""

    def start_clock(self) -> None:
        """Make now scenario time 0 (once the initial members and links are set up)."""

    def advance_to(self, t: float) -> None:
        """Let the network run until scenario time ``t``."""

    def member_clock(self) -> float:
        """What the members' clock reads now (call in their context)."""

    def scenario_time(self, member_time: float) -> float:
        """A member clock reading (a trace event's time) in scenario seconds."""

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the members' context and return its result."""

    def loop_lag(self) -> LoopLag:
        """The worst stall of the members' loops since :meth:`start_clock` (none in a
        simulation, where nothing takes time)."""

    def close(self) -> None:
        """Stop every member and release everything the network holds."""


def set_scenario_links(net: Network, scenario: Scenario) -> None:
    """Give ``net`` every link of ``scenario`` whose parameters are not the scenario's
    defaults (the network applies the defaults to every other pair)."""
    for link in scenario.links:
        if link.params != scenario.defaults:
            net.set_link(link.a, link.b, LinkModel.of(link.params))


def network_class(name: str) -> type[Network]:
    """The network class registered for backend ``name``."""
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r} (expected one of: {', '.join(BACKENDS)})")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
