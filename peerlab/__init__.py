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
    "next_hops",
]
