"""What the sim puts in time: a chunk of bytes (or FIN or RST) on its way, and members' timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from peerlab.sim.clock import Due

if TYPE_CHECKING:
    from peerlab.sim.links import Pipe
    from peerlab.sim.transport import SimTransport


class Arrival(Due):
    """A chunk of bytes, or FIN or RST, reaching the receiving end of a
    :class:`~peerlab.sim.links.Pipe`; all arrivals of a network share one callbacks list (SimPy
    only reads it)."""

    __slots__ = ("item", "pipe")

    item: bytes | str
    pipe: Pipe


class SimTimer:
    """A member's timer (``Transport.call_later``): runs ``fn`` for its transport when due,
    unless cancelled first. Timers wait in their network's own heap, not on SimPy's queue."""

    __slots__ = ("cancelled", "fn", "transport")

    def __init__(self, fn: Callable[[], None], transport: SimTransport) -> None:
        self.cancelled = False
        self.fn = fn
        self.transport = transport

    def cancel(self) -> None:
        """Prevent the callback from running."""
        self.cancelled = True

    def fire(self) -> None:
        """Run the callback unless cancelled (a paused member's timers wait, and may be
        cancelled while they wait)."""
        if not self.cancelled:
            self.fn()
