"""peerlab: build, run, simulate and look at peer-to-peer overlay networks.

The core (wire format, link-state database, routing, the sans-IO :class:`Member`) does no I/O.
Backends live in the ``sim`` (SimPy) and ``realnet`` (TCP sockets) packages.
"""

from peerlab.errors import (
    LocalProtocolError,
    PeerlabError,
    ProtocolError,
    RemoteProtocolError,
    ScenarioError,
)
from peerlab.member import Member, MemberConfig
from peerlab.routing import Route, next_hops
from peerlab.trace import TraceEvent, Tracer

__version__ = "0.1.0"


def load_scenario(path):
    """Load and validate a scenario file (see ``peerlab.scenario.load_scenario``)."""
    from peerlab.scenario import load_scenario as load

    return load(path)


def run(scenario, backend: str = "sim", **kwargs):
    """Run a scenario on a backend and return a RunResult (see ``peerlab.runner.run``)."""
    from peerlab.runner import run as run_scenario

    return run_scenario(scenario, backend, **kwargs)


def compare(scenario, **kwargs):
    """Run a scenario in sim and real; returns (comparison, sim result, real result)."""
    from peerlab.compare import compare as compare_worlds

    return compare_worlds(scenario, **kwargs)


__all__ = [
    "LocalProtocolError",
    "Member",
    "MemberConfig",
    "PeerlabError",
    "ProtocolError",
    "RemoteProtocolError",
    "Route",
    "ScenarioError",
    "TraceEvent",
    "Tracer",
    "compare",
    "load_scenario",
    "next_hops",
    "run",
]
