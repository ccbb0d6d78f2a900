"""An in-memory transport fabric with a manual clock, for running many Members in one test.

No sockets, no SimPy: a heap of timed callbacks and per-direction pipes that deliver bytes in
order, split and merged into random chunks (seeded), so the core's framing and handshake are
exercised the way TCP would exercise them.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from peerlab.linkstate import AdvertCache
from peerlab.member import Member, MemberConfig, established_adjacency
from peerlab.trace import Tracer
from peerlab.transport import ConnectionHandler, Transport


class Timer:
    """A cancellable scheduled callback."""

    __slots__ = ("cancelled", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A heap of (time, seq, timer); time advances only when events run."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(fn)
        heapq.heappush(self._heap, (self.now + max(0.0, delay), next(self._seq), timer))
        return timer

    def step(self) -> bool:
        while self._heap:
            t, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now = t
            timer.fn()
            return True
        return False

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self._heap and self._heap[0][0] <= end:
            self.step()
        self.now = end

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = self.now + timeout
        while not predicate():
            if not self._heap or self._heap[0][0] > end:
                self.now = max(self.now, end)
                return predicate()
            self.step()
        return True


@dataclass
class _Pipe:
    """One direction of a connection: bytes from one end to the other."""

    dst: _End | None = None
    inbox: deque[tuple[float, bytes | None]] = field(default_factory=deque)
    last_arrival: float = 0.0
    blackholed: bool = False


@dataclass(eq=False)
class _End:
    handle: int
    transport: MemTransport
    out: _Pipe
    closed: bool = False


class MemTransport(Transport):
    """A member's view of the in-memory fabric."""

    def __init__(self, net: MemoryNetwork, address: str) -> None:
        self.net = net
        self._address = address
        self.handler: ConnectionHandler | None = None
        self.ends: dict[int, _End] = {}
        self.alive = True

    @property
    def listen_address(self) -> str:
        return self._address

    def now(self) -> float:
        return self.net.clock.now

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.net.clock.call_later(delay, lambda: self.alive and fn())

    def connect(self, address: str) -> None:
        self.net._connect(self, address)

    def send(self, conn, data: bytes) -> None:
        end = self.ends.get(conn)
        if end is None or end.closed or not data:
            return
        self.net._push(end.out, data)

    def close(self, conn) -> None:
        end = self.ends.pop(conn, None)
        if end is None:
            return
        end.closed = True
        self.net._push(end.out, None)


class MemoryNetwork:
    """Members on an in-memory fabric driven by a :class:`ManualClock`."""

    def __init__(
        self,
        seed: int = 0,
        *,
        latency: float = 0.001,
        chunking: bool = True,
        config: MemberConfig | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.clock = ManualClock()
        self.rng = random.Random(seed)
        self.latency = latency
        self.chunking = chunking
        self.config = config or MemberConfig()
        self.tracer = tracer or Tracer()
        self.listeners: dict[str, MemTransport] = {}
        self.members: dict[str, Member] = {}
        self.lives: dict[str, int] = {}  # member -> incarnation of its latest life
        self._handles = itertools.count(1)

    # --- building ------------------------------------------------------------------------

    def transport(self, address: str) -> MemTransport:
        t = MemTransport(self, address)
        self.listeners[address] = t
        return t

    def add(
        self,
        member_id: str,
        *,
        config: MemberConfig | None = None,
        incarnation: int | None = None,
        cache: AdvertCache | None = None,
    ) -> Member:
        """Start a member; each life gets the next incarnation unless ``incarnation`` is given."""
        t = self.transport(f"mem:{member_id}")
        self.lives[member_id] = (
            self.lives.get(member_id, 0) + 1 if incarnation is None else incarnation
        )
        m = Member(
            member_id,
            t,
            config=config or self.config,
            tracer=self.tracer,
            rng=random.Random(f"{member_id}"),
            incarnation=self.lives[member_id],
            cache=cache,
        )
        t.handler = m
        self.members[member_id] = m
        m.start()
        return m

    def link(self, a: str, b: str) -> None:
        self.members[a].connect(f"mem:{b}")

    def unlink(self, a: str, b: str) -> None:
        self.members[a].disconnect(b)

    def kill(self, member_id: str) -> None:
        """Remove a member at once: it stops, its connections close, its state is gone."""
        m = self.members.pop(member_id)
        t = m.transport
        assert isinstance(t, MemTransport)
        m.stop()
        t.alive = False
        del self.listeners[t.listen_address]

    def blackhole(self, a: str, b: str) -> None:
        """Silently drop every byte between a and b in both directions."""
        ta, tb = self.members[a].transport, self.members[b].transport
        for t, other in ((ta, tb), (tb, ta)):
            for end in t.ends.values():
                if end.out.dst is not None and end.out.dst.transport is other:
                    end.out.blackholed = True

    # --- running -------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        return self.clock.run_until(predicate, timeout)

    def adjacency(self) -> dict[str, set[str]]:
        """Ground truth: established two-way neighbour relations."""
        return established_adjacency(self.members)

    # --- fabric --------------------------------------------------------------------------

    def _connect(self, dialer: MemTransport, address: str) -> None:
        def syn_arrives() -> None:
            acceptor = self.listeners.get(address)
            if acceptor is None or not acceptor.alive:
                dialer.call_later(
                    self.latency,
                    lambda: dialer.handler.connect_failed(address, "connection refused"),
                )
                return
            a_out, b_out = _Pipe(), _Pipe()
            a = _End(next(self._handles), dialer, a_out)
            b = _End(next(self._handles), acceptor, b_out)
            a_out.dst, b_out.dst = b, a
            a_out.last_arrival = b_out.last_arrival = self.clock.now
            dialer.ends[a.handle] = a
            acceptor.ends[b.handle] = b

            def established() -> None:
                if a.handle in dialer.ends:
                    dialer.handler.connection_made(a.handle, True, address)

            self.clock.call_later(self.latency, established)
            acceptor.handler.connection_made(b.handle, False, dialer.listen_address)

        self.clock.call_later(self.latency, syn_arrives)

    def _push(self, pipe: _Pipe, data: bytes | None) -> None:
        pieces: list[bytes | None] = [data]
        if data is not None and self.chunking and len(data) > 1 and self.rng.random() < 0.5:
            cuts = sorted(self.rng.sample(range(1, len(data)), min(3, len(data) - 1)))
            pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        arrival = max(self.clock.now + self.latency, pipe.last_arrival)
        pipe.last_arrival = arrival
        for piece in pieces:
            pipe.inbox.append((arrival, piece))
            self.clock.call_later(arrival - self.clock.now, lambda p=pipe: self._deliver(p))

    def _deliver(self, pipe: _Pipe) -> None:
        now = self.clock.now
        dst = pipe.dst
        while pipe.inbox and pipe.inbox[0][0] <= now:
            _, piece = pipe.inbox.popleft()
            if pipe.blackholed or dst is None or dst.closed:
                continue
            t = dst.transport
            if piece is None:
                dst.closed = True
                if t.ends.pop(dst.handle, None) is not None and t.alive:
                    t.handler.connection_lost(dst.handle, "closed by peer")
                return
            # merge with following ready pieces at random, as TCP reads would
            while (
                self.chunking
                and pipe.inbox
                and pipe.inbox[0][0] <= now
                and pipe.inbox[0][1] is not None
                and self.rng.random() < 0.5
            ):
                piece += pipe.inbox.popleft()[1]
            if t.alive:
                t.handler.data_received(dst.handle, piece)
            return


class RawPeer:
    """A handler that records what it is told and lets the test write raw bytes."""

    def __init__(self):
        self.conns, self.lost, self.data = [], [], b""

    def connection_made(self, conn, outbound, remote_address):
        self.conns.append(conn)

    def data_received(self, conn, data):
        self.data += data

    def connection_lost(self, conn, reason):
        self.lost.append(reason)

    def connect_failed(self, address, reason):
        self.lost.append(reason)


def raw_peer(
    net: MemoryNetwork, name: str, target: str, *, listening: bool = True
) -> tuple[MemTransport, RawPeer]:
    """A raw peer at address ``mem:name`` connected to member ``target``, writing whatever it
    is told; several that do not listen may share one address, as connections from one host."""
    peer = RawPeer()
    t = net.transport(f"mem:{name}") if listening else MemTransport(net, f"mem:{name}")
    t.handler = peer
    t.connect(f"mem:{target}")
    assert net.run_until(lambda: peer.conns, timeout=1)
    return t, peer
