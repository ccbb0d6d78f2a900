"""What a fault did: counters that prove a fault hit something, the same in every backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultReport:
    """The effect of one injected fault, filled in while the run goes on.

    ``conns_cut`` counts connections the fault closed or silenced; ``bytes_held`` and
    ``chunks_held`` what a partition held back (or a paused member's queued work);
    ``connects_blocked`` dials it stopped; ``members_affected`` every member it touched.
    """

    kind: str
    at: float
    target: str
    conns_cut: int = 0
    bytes_held: int = 0
    chunks_held: int = 0
    connects_blocked: int = 0
    members_affected: set[str] = field(default_factory=set)

    @property
    def hit(self) -> bool:
        """Whether the fault affected anything at all."""
        return bool(
            self.conns_cut or self.bytes_held or self.connects_blocked or self.members_affected
        )

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "kind": self.kind,
            "at": self.at,
            "target": self.target,
            "conns_cut": self.conns_cut,
            "bytes_held": self.bytes_held,
            "chunks_held": self.chunks_held,
            "connects_blocked": self.connects_blocked,
            "members_affected": sorted(self.members_affected),
            "hit": self.hit,
        }
