"""Link models and the one-directional byte pipes that carry a simulated TCP connection."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peerlab.scenario import LinkParams
    from peerlab.sim.events import Arrival
    from peerlab.sim.transport import SimEnd


@dataclass(frozen=True)
class LinkModel:
    """How bytes cross between two members.

    ``latency`` and ``jitter`` are one-way seconds (jitter never reorders bytes of a connection);
    ``bandwidth`` is bits per second per direction (0 means unlimited); ``loss`` is the chance a
    segment is lost, paid for as ``rto`` seconds of retransmission delay, since TCP loses no bytes.
    """

    latency: float = 0.005
    jitter: float = 0.0
    bandwidth: float = 100e6
    loss: float = 0.0
    rto: float = 0.2
    mss: int = 1460
    #: Whether delays are drawn at random (jitter or loss), not fixed.
    varies: bool = field(init=False, repr=False, compare=False)
    #: Serialisation delay per byte (0 for unlimited bandwidth).
    seconds_per_byte: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.latency < 0 or self.jitter < 0 or self.bandwidth < 0 or self.rto < 0:
            raise ValueError(f"link model values must be >= 0: {self}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"link loss must be in [0, 1), got {self.loss}")
        # plain attributes, not cached properties: they are read on every write into a pipe
        object.__setattr__(self, "varies", bool(self.jitter or self.loss))
        object.__setattr__(self, "seconds_per_byte", 8 / self.bandwidth if self.bandwidth else 0.0)

    @classmethod
    def of(cls, params: LinkParams) -> LinkModel:
        """The model of a scenario link's parameters."""
        return cls(
            latency=params.latency,
            jitter=params.jitter,
            bandwidth=params.bandwidth,
            loss=params.loss,
        )

    def one_way(self, rng: random.Random) -> float:
        """A sampled one-way propagation delay."""
        if self.jitter:
            return self.latency + rng.random() * self.jitter
        return self.latency

    def retransmit_delay(self, nbytes: int, rng: random.Random) -> float:
        """Extra delay from lost segments of a write of ``nbytes`` (each loss costs one rto)."""
        if not self.loss:
            return 0.0
        segments = max(1, -(-nbytes // self.mss))
        return sum(self.rto for _ in range(segments) if rng.random() < self.loss)


#: Sentinels travelling in a pipe after the data: an orderly close, and a reset.
FIN = "fin"
RST = "rst"


@dataclass(eq=False)
class Pipe:
    """One direction of one connection: FIFO, timed by a :class:`LinkModel`."""

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
