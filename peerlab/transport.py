"""The seam between the sans-IO member and the world that carries its bytes.

A backend (``peerlab.realnet``'s TCP sockets, ``peerlab.sim``'s SimPy links, the tests'
in-memory fabric) implements :class:`Transport` and calls the :class:`ConnectionHandler` methods
of the member it serves. Connections are opaque hashable handles chosen by the transport.

Contract every backend keeps (the conformance suite in ``tests/`` checks it):

* ``connect(address)`` ends in exactly one of ``connection_made(conn, True, address)`` or
  ``connect_failed(address, reason)``; an accepted connection gives
  ``connection_made(conn, False, remote_address)``.
* Bytes passed to ``send`` arrive at the other end in order, exactly once, possibly split or
  merged into different chunks.
* ``close(conn)`` flushes what was already sent, then closes; the closing side gets no further
  callback for that connection, the other side gets ``connection_lost(conn, reason)`` after the
  flushed bytes.
* Callbacks never run re-entrantly from inside a call the member made on the transport.
* ``call_later`` callbacks run in time order; a cancelled handle never runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Protocol

Conn = Hashable


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled before it runs."""

    def cancel(self) -> None:
        """Prevent the callback from running (no effect if it already ran)."""


class ConnectionHandler(Protocol):
    """What a transport calls on the member it serves."""

    def connection_made(self, conn: Conn, outbound: bool, remote_address: str) -> None:
        """A connection is open (``outbound``: we dialled it)."""

    def data_received(self, conn: Conn, data: bytes) -> None:
        """Bytes arrived on ``conn``."""

    def connection_lost(self, conn: Conn, reason: str) -> None:
        """``conn`` closed for a reason other than our own ``close``."""

    def connect_failed(self, address: str, reason: str) -> None:
        """A ``connect(address)`` did not produce a connection."""


class Transport(ABC):
    """What a member may do to the world: dial, send, close, and read the clock."""

    @property
    @abstractmethod
    def listen_address(self) -> str:
        """Where other members can reach this one (opaque to the core)."""

    @abstractmethod
    def connect(self, address: str) -> None:
        """Open a connection to ``address``; the outcome arrives as a callback."""

    @abstractmethod
    def send(self, conn: Conn, data: bytes) -> None:
        """Queue bytes on ``conn`` (ignored if ``conn`` is already closed)."""

    @abstractmethod
    def close(self, conn: Conn) -> None:
        """Flush then close ``conn``; no more callbacks for it."""

    @abstractmethod
    def now(self) -> float:
        """Current time in seconds (simulated or monotonic wall clock)."""

    @abstractmethod
    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` after ``delay`` seconds unless the returned handle is cancelled."""

    def caught_up(self) -> float:
        """The time by which everything peers had sent was taken in: :meth:`now`, unless the
        transport fell behind (a busy loop). A peer is silent only for as long as we listened."""
        return self.now()
