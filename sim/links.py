"""The one-directional byte pipes that carry a simulated TCP connection, timed by the shared
:class:`~peerlab.linkmodel.LinkModel`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peerlab.linkmodel import LinkModel

if TYPE_CHECKING:
    from peerlab.sim.events import Arrival
    from peerlab.sim.transport import SimEnd


#: Sentinels travelling in a pipe after the data: an orderly close, and a reset.
FIN = "fin"
RST = "rst"

__all__ = ["FIN", "RST", "LinkModel", "Pipe"]


@dataclass(eq=False)
class Pipe:
    """One direction of one connection: FIFO, timed by a :class:`LinkModel` (a
    :class:`~peerlab.linkmodel.Lane`)."""

    src: str
    dst: str
    model: LinkModel
    end: SimEnd | None = None  # the receiving end
    source: SimEnd | None = None  # the sending end
    busy_until: float = 0.0
    last_arrival: float = 0.0  # when the latest chunk sent arrives (chunks never overtake)
    last: Arrival | None = None  # the latest chunk sent, until delivered (may take a merge)
    held: list[bytes | str] = field(default_factory=list)
    dead: bool = False  # silently dropping everything (power-off, silent cut)
