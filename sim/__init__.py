"""The SimPy backend: members in a discrete-event simulation with modelled TCP links."""

from peerlab.faults import FaultReport
from peerlab.linkmodel import LinkModel
from peerlab.sim.network import SimNetwork
from peerlab.sim.transport import SimTransport

__all__ = ["FaultReport", "LinkModel", "SimNetwork", "SimTransport"]
