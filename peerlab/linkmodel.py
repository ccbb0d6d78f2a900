"""The link model every backend applies: when a write of n bytes arrives, and what a connection
costs to set up.

One model, two implementations of the wire: the simulator (:mod:`peerlab.sim`) schedules each
write's arrival on its clock; the real transports (:mod:`peerlab.realnet`) hold each write back
in user space until the same arrival time on the wall clock, then hand it to the kernel. Both ask
this module, so they cannot drift apart.

A link carries two :class:`Lane` s, one per direction of each connection. A write waits behind
the bytes queued before it (bandwidth, a FIFO backlog per direction), then takes the link's
one-way latency plus jitter plus, for each lost segment, a retransmission timeout; it never
arrives before the write before it (jitter does not reorder a connection's bytes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from peerlab.scenario import LinkParams


class Lane(Protocol):
    """One direction of one connection, as the model times it."""

    #: when the bytes queued so far have been put on the link
    busy_until: float
    #: when the latest write arrives at the far end
    last_arrival: float


@dataclass(slots=True)
class LaneState:
    """A :class:`Lane` of its own (the simulator's pipes are lanes themselves)."""

    busy_until: float = 0.0
    last_arrival: float = 0.0


@dataclass(frozen=True)
class LinkModel:
    """How bytes cross between two members.

    ``latency`` and ``jitter`` are one-way seconds (a uniform extra delay in ``[0, jitter)``,
    never reordering bytes of a connection); ``bandwidth`` is bits per second per direction
    (0 means unlimited); ``loss`` is the chance a segment of ``mss`` bytes is lost, paid for as
    ``rto`` seconds of retransmission delay, since TCP loses no bytes.
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
        # plain attributes, not cached properties: they are read on every write
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

    def to_dict(self) -> dict[str, Any]:
        """The model as plain data (what :meth:`from_dict` reads back)."""
        return {
            "latency": self.latency,
            "jitter": self.jitter,
            "bandwidth": self.bandwidth,
            "loss": self.loss,
            "rto": self.rto,
            "mss": self.mss,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkModel:
        """The model :meth:`to_dict` wrote."""
        return cls(**data)

    def stretched(self, scale: float) -> LinkModel:
        """The model on a clock ``scale`` times slower: every delay ``scale`` times longer."""
        if scale == 1:
            return self
        return LinkModel(
            latency=self.latency * scale,
            jitter=self.jitter * scale,
            bandwidth=self.bandwidth / scale,
            loss=self.loss,
            rto=self.rto * scale,
            mss=self.mss,
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

    def setup_delay(self, rng: random.Random) -> float:
        """A connection's set-up cost: the one-way delay of its SYN. The acceptor has the
        connection that long after the dial, the dialler twice that long (the SYN-ACK back)."""
        return self.one_way(rng)

    def arrival(self, lane: Lane, now: float, nbytes: int, rng: random.Random) -> float:
        """When a write of ``nbytes`` put on ``lane`` at ``now`` arrives at the far end; the
        lane's backlog and last arrival move on accordingly."""
        busy = lane.busy_until
        busy = (now if now > busy else busy) + nbytes * self.seconds_per_byte
        lane.busy_until = busy
        if self.varies:
            arrival = busy + self.one_way(rng) + self.retransmit_delay(nbytes, rng)
        else:
            arrival = busy + self.latency
        previous = lane.last_arrival
        if arrival < previous:
            arrival = previous
        lane.last_arrival = arrival
        return arrival
