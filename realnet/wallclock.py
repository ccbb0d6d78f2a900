"""Scenario time on the wall clock, as the real backends keep it."""

from __future__ import annotations

import dataclasses
import time

from peerlab.member import MemberConfig

#: The member settings that are durations, and the one that is a rate (per second): what a
#: stretched clock stretches.
DURATIONS = (
    "handshake_timeout",
    "keepalive_interval",
    "dead_timeout",
    "flood_delay",
    "route_delay",
    "route_hold",
    "max_age",
    "ack_timeout",
    "reliable_deadline",
    "frame_grace",
    "discourage_time",
)
RATES = ("min_frame_rate",)


def stretched(config: MemberConfig, scale: float) -> MemberConfig:
    """``config`` for members on a clock ``scale`` times slower than the scenario's: every
    timer ``scale`` times longer, every rate ``scale`` times lower."""
    if scale == 1:
        return config
    changes = {name: getattr(config, name) * scale for name in DURATIONS}
    changes.update({name: getattr(config, name) / scale for name in RATES})
    return dataclasses.replace(config, **changes)


class WallClock:
    """Scenario seconds are wall-clock seconds since :meth:`start_clock`, divided by
    ``time_scale``; members' trace times convert through :meth:`scenario_time`. A network on
    a stretched clock stretches its members' timers (:func:`stretched`) and its links' delays
    (:meth:`LinkModel.stretched <peerlab.linkmodel.LinkModel.stretched>`) alike, so that the
    whole run is the scenario's, slowed down or sped up."""

    poll_interval = 0.02
    time_scale: float = 1.0

    def member_clock(self) -> float:
        """What the members' clock reads now (the clock their trace events carry)."""
        raise NotImplementedError

    def start_clock(self) -> None:
        """Make now scenario time 0."""
        self._t0 = time.monotonic()
        self._member0 = self.member_clock()

    @property
    def now(self) -> float:
        """Scenario seconds since :meth:`start_clock` (since the network was made, before)."""
        return (time.monotonic() - self._t0) / self.time_scale

    def advance_to(self, t: float) -> None:
        """Wait until scenario time ``t`` (a deadline, not a fixed sleep)."""
        deadline = self._t0 + t * self.time_scale
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def scenario_time(self, member_time: float) -> float:
        """A member clock reading in scenario seconds."""
        return (member_time - self._member0) / self.time_scale
