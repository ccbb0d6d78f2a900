"""The SimPy events the sim schedules: one per timer and one per chunk of bytes in flight, so
they carry only what SimPy's ``Environment.step`` reads of an event."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.links import Pipe
    from sim.transport import SimTransport


class Due:
    """A SimPy event that runs its callbacks when the environment reaches it.

    ``Environment.step`` needs of an event only its ``callbacks`` and a true ``_ok``; a
    ``Timeout`` would also run a Python-level ``__init__`` and build an attribute dict. Made
    with no arguments (so no ``__init__`` call either) and given its callbacks after.
    """

    __slots__ = ("callbacks",)
    _ok = True

    callbacks: list[Callable[[Any], None]] | None


class Arrival(Due):
    """A chunk of bytes, or FIN or RST, reaching the receiving end of a :class:`~sim.links.Pipe`;
    all arrivals of a network share one callbacks list (SimPy only reads it)."""

    __slots__ = ("item", "pipe")

    item: bytes | str
    pipe: Pipe


class SimTimer(Due):
    """A member's timer (``Transport.call_later``): runs ``fn`` for its transport when due,
    unless cancelled first; all timers of a network share one callbacks list."""

    __slots__ = ("cancelled", "fn", "transport")

    cancelled: bool
    fn: Callable[[], None]
    transport: SimTransport

    def cancel(self) -> None:
        """Prevent the callback from running."""
        if not self.cancelled:
            self.cancelled = True
            if self.callbacks is not None:  # still on SimPy's queue (SimPy clears it on firing)
                self.transport.net.timer_cancelled()
