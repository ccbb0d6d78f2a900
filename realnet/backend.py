"""The runner's view of the real TCP backend: the scenario's timeline in wall-clock time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from peerlab.member import Member, MemberConfig
from peerlab.realnet.network import TcpNetwork
from peerlab.scenario import Scenario
from peerlab.trace import Tracer

T = TypeVar("T")


class RealDriver:
    """Runs a scenario's members on loopback TCP; ``time_scale`` stretches the timeline."""

    name = "real"
    poll_interval = 0.02

    def __init__(
        self,
        scenario: Scenario,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] = Member,
    ) -> None:
        self.time_scale = time_scale
        self.net = self._open(scenario.seed, config, tracer, member_class)
        self.net.default_latency = scenario.defaults.latency
        for link in scenario.links:
            if link.params != scenario.defaults:
                self.net.set_link(link.a, link.b, link.params.latency, link.params.bandwidth)
        self.start_clock()

    def _open(self, seed: int, config: MemberConfig, tracer: Tracer, member_class: type[Member]):
        return TcpNetwork(seed, config=config, tracer=tracer, member_class=member_class)

    def start_clock(self) -> None:
        """Make scenario time 0 now (called once the initial members and links are set up)."""
        self._t0 = time.monotonic()
        self._clock0 = self.net.now

    def now(self) -> float:
        """Scenario seconds elapsed (wall clock divided by the time scale)."""
        return (time.monotonic() - self._t0) / self.time_scale

    def advance_to(self, t: float) -> None:
        """Wait until scenario time ``t`` (a deadline, not a fixed sleep)."""
        deadline = self._t0 + t * self.time_scale
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the network's event loop thread."""
        return self.net.call(fn)

    def to_scenario_time(self, loop_time: float) -> float:
        """Convert a member clock reading (trace time) to scenario time."""
        return (loop_time - self._clock0) / self.time_scale

    def faults(self) -> list[dict]:
        """The real backend does not count fault effects."""
        return []

    def close(self) -> None:
        """Stop every member and join the loop thread."""
        self.net.close()


class ProcDriver(RealDriver):
    """The real backend in multi-process mode: every member its own OS process."""

    name = "proc"
    poll_interval = 0.05

    def _open(self, seed: int, config: MemberConfig, tracer: Tracer, member_class: type[Member]):
        from peerlab.realnet.procnet import ProcessNetwork

        return ProcessNetwork(seed, config=config, tracer=tracer, member_class=member_class)
