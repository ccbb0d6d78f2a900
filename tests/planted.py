"""Deliberately broken members, for checking that ``peerlab explore`` finds what is wrong."""

from __future__ import annotations

import random

from peerlab.linkstate import AdvertRecord
from peerlab.member import Member


class NoFightBack(Member):
    """Forgets that it lived before: every life is incarnation 1, and it never re-originates
    above a newer version of its own advert. A restarted member then stays unreachable wherever
    its earlier life's advert outranks the new one (what the protocol did before incarnations)."""

    @classmethod
    def incarnate(cls, member_id, transport, *, incarnation, **kw):
        return super().incarnate(member_id, transport, incarnation=1, **kw)

    def _fight_back(self, heard: AdvertRecord) -> None:
        pass


class Unseeded(Member):
    """Waits a random time, from an unseeded generator, before recomputing routes: runs of
    one seed leave different traces."""

    _entropy = random.SystemRandom()

    def _on_route_timer(self) -> None:
        self.transport.call_later(self._entropy.random() * 0.01, super()._on_route_timer)
