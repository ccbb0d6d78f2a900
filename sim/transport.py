"""The member-facing side of the simulation: one :class:`SimTransport` per member."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peerlab.sim.events import SimTimer
from peerlab.sim.links import FIN, Pipe
from peerlab.transport import ConnectionHandler, Transport

if TYPE_CHECKING:
    from peerlab.sim.network import SimNetwork


@dataclass(eq=False)
class SimEnd:
    """One end of a simulated connection, owned by one transport; it is also the connection's
    handle, so sending on it needs no lookup."""

    transport: SimTransport
    out: Pipe
    closed: bool = False


class SimTransport(Transport):
    """A member's link to the simulated world: sockets become pipes, time is SimPy's clock.

    A transport is *alive* while its member's process runs; when it dies (crash, power-off)
    every pending callback for it becomes a no-op, which is how a crash loses all state. While
    *paused*, callbacks queue up and run in order on resume.
    """

    def __init__(self, net: SimNetwork, host: str, address: str) -> None:
        self.net = net
        self._clock = net.clock
        self._time = net.clock.time
        self.host = host
        self._address = address
        self.handler: ConnectionHandler | None = None
        # the open ends, in the order they were made (a dict as an ordered set: determinism)
        self.ends: dict[SimEnd, None] = {}
        self.alive = True
        self.listening = True
        self.paused = False
        self._backlog: list[Callable[[], None]] = []

    @property
    def listen_address(self) -> str:
        return self._address

    def now(self) -> float:
        return self._time()

    def call_later(self, delay: float, fn: Callable[[], None]) -> SimTimer:
        timer = SimTimer(fn, self)
        self._clock.add_timer(delay, timer)
        return timer

    def connect(self, address: str) -> None:
        self.net.dial(self, address)

    def send(self, conn: SimEnd, data: bytes) -> None:
        if not conn.closed and data:  # an end leaves ``ends`` only closed
            self.net.transmit(conn.out, data)  # bytes, never changed after: kept, not copied

    def close(self, conn: SimEnd) -> None:
        if not conn.closed:
            del self.ends[conn]
            conn.closed = True
            self.net.signal(conn.out, FIN)

    # --- used by the network -------------------------------------------------------------

    def dispatch(self, fn: Callable[[], None]) -> None:
        """Run a callback for this member now, or queue it while paused; drop it if dead."""
        if not self.alive:
            return
        if self.paused:
            self._backlog.append(fn)
        else:
            fn()

    def resume(self) -> int:
        """Leave the paused state and run what queued up; returns how many callbacks ran."""
        self.paused = False
        backlog, self._backlog = self._backlog, []
        for fn in backlog:
            self.dispatch(fn)
        return len(backlog)
