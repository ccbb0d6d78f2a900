"""The SimPy backend: members in a discrete-event simulation with modelled TCP links."""

from sim.faults import FaultReport
from sim.links import LinkModel
from sim.network import SimNetwork
from sim.transport import SimTransport

__all__ = ["FaultReport", "LinkModel", "SimNetwork", "SimTransport"]
