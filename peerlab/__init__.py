"""peerlab: build, run, simulate and look at peer-to-peer overlay networks.

The core (wire format, link-state database, routing, the sans-IO :class:`Member`) does no I/O.
Backends live in the ``peerlab.sim`` (SimPy) and ``peerlab.realnet`` (TCP sockets) packages.
"""

from peerlab.errors import (
    ConfigError,
    LocalProtocolError,
    PeerlabError,
    ProtocolError,
    RemoteProtocolError,
    ResultsError,
    ScenarioError,
    UnknownMember,
)
from peerlab.member import Member, MemberConfig
from peerlab.routing import Route, next_hops
from peerlab.trace import TraceEvent, Tracer

__version__ = "0.1.0"


# The tool API. ``compare`` is both a submodule and the function below; importing the function
# here, after the submodule, keeps ``peerlab.compare`` the function.
from peerlab.compare import compare, format_comparison
from peerlab.explorer import explore
from peerlab.runner import run
from peerlab.scenario import load_scenario

__all__ = [
    "ConfigError",
    "LocalProtocolError",
    "Member",
    "MemberConfig",
    "PeerlabError",
    "ProtocolError",
    "RemoteProtocolError",
    "ResultsError",
    "Route",
    "ScenarioError",
    "TraceEvent",
    "Tracer",
    "UnknownMember",
    "compare",
    "explore",
    "format_comparison",
    "load_scenario",
    "next_hops",
    "run",
]
