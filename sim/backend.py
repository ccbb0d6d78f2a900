"""The runner's view of the simulation backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from peerlab.member import Member, MemberConfig
from peerlab.scenario import Scenario
from peerlab.sim.links import LinkModel
from peerlab.sim.network import SimNetwork
from peerlab.trace import Tracer

T = TypeVar("T")


def _model(params) -> LinkModel:
    return LinkModel(
        latency=params.latency, jitter=params.jitter, bandwidth=params.bandwidth, loss=params.loss
    )


class SimDriver:
    """Runs a scenario's network in simulated time (as fast as the CPU allows)."""

    name = "sim"
    poll_interval = 0.01

    def __init__(
        self,
        scenario: Scenario,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] = Member,
    ) -> None:
        self.net = SimNetwork(
            scenario.seed,
            defaults=_model(scenario.defaults),
            config=config,
            tracer=tracer,
            member_class=member_class,
        )
        for link in scenario.links:
            if link.params != scenario.defaults:
                self.net.set_link(link.a, link.b, _model(link.params))

    def start_clock(self) -> None:
        """Setting up takes no simulated time: nothing to do."""

    def now(self) -> float:
        """Scenario seconds elapsed."""
        return self.net.now

    def advance_to(self, t: float) -> None:
        """Run the simulation up to scenario time ``t``."""
        if t > self.net.now:
            self.net.env.run(until=t)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the network's context."""
        return fn()

    def faults(self) -> list[dict]:
        """What each injected fault did."""
        return [f.to_dict() for f in self.net.faults]

    def close(self) -> None:
        """Nothing to release in a simulation."""
