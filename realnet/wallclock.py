"""Scenario time on the wall clock, as the real backends keep it."""

from __future__ import annotations

import time


class WallClock:
    """Scenario seconds are wall-clock seconds since :meth:`start_clock`, divided by
    ``time_scale``; members' trace times convert through :meth:`scenario_time`."""

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
