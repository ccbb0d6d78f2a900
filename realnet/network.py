"""TcpNetwork: a whole overlay of real members on loopback, in one process.

All members share one :class:`~peerlab.realnet.loop.EventLoop` thread (every member callback
runs there; the GIL would serialise one thread per member anyway). Faults the OS cannot produce
on loopback (partitions, silent cuts, power-off, per-link latency) are emulated inside the
transports by a :class:`NetPolicy`. Every control call is handed to the loop thread-safely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from peerlab.linkstate import AdvertCache
from peerlab.member import (
    Member,
    MemberConfig,
    established_adjacency,
    established_links,
    running_member,
    take_running,
)
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.transport import Policy, TcpLimits, TcpTransport, format_address, parse_address
from peerlab.trace import Tracer

T = TypeVar("T")


class NetPolicy(Policy):
    """Knows which in-process member owns which socket, and applies emulated faults."""

    passthrough = False  # faults and latency can be switched on at any time

    def __init__(self) -> None:
        self.sock_owner: dict[tuple, str] = {}
        self.ip_owner: dict[str, str] = {}  # when each member has its own loopback address
        self.address_owner: dict[str, str] = {}
        self.cuts: set[frozenset[str]] = set()
        self.dead: set[str] = set()
        self.groups: dict[str, int] = {}
        self.one_way = False
        self.latency: dict[frozenset[str], float] = {}
        self.default_latency = 0.0
        self.bandwidth: dict[frozenset[str], float] = {}

    def note_socket(self, sockname: tuple, host: str | None) -> None:
        if host is not None:
            self.sock_owner[sockname[:2]] = host

    def host_of_peer(self, peername: tuple) -> str | None:
        return self.sock_owner.get(peername[:2]) or self.ip_owner.get(peername[0])

    def host_of_address(self, address: str) -> str | None:
        owner = self.address_owner.get(address)
        if owner is None and self.ip_owner:
            owner = self.ip_owner.get(address.rpartition(":")[0].strip("[]"))
        return owner

    def verdict(self, src: str | None, dst: str | None) -> str:
        if src is None or dst is None or not (self.dead or self.cuts or self.groups):
            return "pass"  # the common case: no fault active, checked on every frame
        if src in self.dead or dst in self.dead or frozenset((src, dst)) in self.cuts:
            return "drop"
        gs, gd = self.groups.get(src), self.groups.get(dst)
        if gs is not None and gd is not None and gs != gd and (not self.one_way or gs == 0):
            return "hold"
        return "pass"

    def delay(self, src: str | None, dst: str | None, nbytes: int) -> float:
        if src is None or dst is None or not (self.latency or self.bandwidth):
            return self.default_latency
        pair = frozenset((src, dst))
        bandwidth = self.bandwidth.get(pair, 0.0)
        serialise = nbytes * 8 / bandwidth if bandwidth else 0.0
        return self.latency.get(pair, self.default_latency) + serialise


class TcpNetwork:
    """Real members on 127.0.0.1, with the same control surface as ``peerlab.sim.SimNetwork``."""

    def __init__(
        self,
        seed: int = 0,
        *,
        config: MemberConfig | None = None,
        tracer: Tracer | None = None,
        host: str = "127.0.0.1",
        limits: TcpLimits | None = None,
        member_class: type[Member] = Member,
    ) -> None:
        self.seed = seed
        self.member_class = member_class
        self.config = config or MemberConfig()
        self.tracer = tracer if tracer is not None else Tracer()
        self.host = host
        self.limits = limits or TcpLimits()
        self.policy = NetPolicy()
        self.cache = AdvertCache()
        self.loop = EventLoop("peerlab-tcpnet").start()
        self.transports: dict[str, TcpTransport] = {}
        self.members: dict[str, Member] = {}
        self.addresses: dict[str, str] = {}
        self.incarnations: dict[str, int] = {}
        self.on_deliver: Callable[[str, object], None] | None = None
        self._closed = False

    # --- plumbing ------------------------------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop thread and return its result."""
        return self.loop.call(fn, timeout)

    @property
    def now(self) -> float:
        """Seconds since the network started (the members' clock)."""
        return self.loop.now()

    def run_until(
        self, predicate: Callable[[], bool], timeout: float, check_every: float = 0.005
    ) -> bool:
        """Wait until ``predicate()`` (evaluated on the loop thread) holds, or the deadline."""
        deadline = time.monotonic() + timeout
        while not self.call(predicate):
            if time.monotonic() >= deadline:
                return False
            time.sleep(check_every)
        return True

    def close(self) -> None:
        """Stop every member, close every socket, join the loop thread."""
        if self._closed:
            return
        self._closed = True

        def shutdown() -> None:
            for mid in list(self.members):
                self.members.pop(mid).stop()
            for t in self.transports.values():
                t.shutdown()

        self.call(shutdown)
        self.loop.stop()

    def __enter__(self) -> TcpNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building ------------------------------------------------------------------------

    def address_of(self, member_id: str) -> str:
        """The listen address of a member (known once it has been added)."""
        return self.addresses[member_id]

    @property
    def default_latency(self) -> float:
        """Latency emulated between members with no link of their own (seconds)."""
        return self.policy.default_latency

    @default_latency.setter
    def default_latency(self, seconds: float) -> None:
        self.policy.default_latency = seconds

    def set_link(self, a: str, b: str, latency: float, bandwidth: float = 0.0) -> None:
        """Emulate ``latency`` seconds (and ``bandwidth`` bits/s) on bytes between a and b."""
        pair = frozenset((a, b))
        self.policy.latency[pair] = latency
        if bandwidth:
            self.policy.bandwidth[pair] = bandwidth

    def add_member(
        self, member_id: str, *, join: Iterable[str] = (), config: MemberConfig | None = None
    ) -> Member:
        """Create and start a member on loopback; ``join`` lists member ids to dial."""
        join = list(join)
        return self.call(lambda: self._add(member_id, join, config))

    def _add(self, member_id: str, join: list[str], config: MemberConfig | None) -> Member:
        if member_id in self.members:
            raise ValueError(f"member {member_id!r} already exists")
        port = 0
        if member_id in self.addresses:
            port = parse_address(self.addresses[member_id])[1]
        transport = TcpTransport(
            self.loop, self.host, port, name=member_id, limits=self.limits, policy=self.policy
        )
        self.addresses[member_id] = transport.listen_address
        self.policy.address_owner[transport.listen_address] = member_id
        self.policy.dead.discard(member_id)
        incarnation = self.incarnations.get(member_id, 0) + 1
        self.incarnations[member_id] = incarnation
        member = self.member_class.incarnate(
            member_id,
            transport,
            seed=self.seed,
            incarnation=incarnation,
            config=config or self.config,
            tracer=self.tracer,
            cache=self.cache,
            deliver=self.on_deliver,
        )
        transport.handler = member
        transport.start()
        self.transports[member_id] = transport
        self.members[member_id] = member
        member.start(join=[self.addresses[j] for j in join])
        return member

    def connect(self, a: str, b: str) -> None:
        """Have member ``a`` dial member ``b``."""
        self.call(lambda: running_member(self.members, a).connect(self.addresses[b]))

    def adjacency(self) -> dict[str, set[str]]:
        """Ground truth: pairs of live members that both hold an established connection."""
        return self.call(lambda: established_adjacency(self.members))

    def links(self) -> list[tuple[str, str]]:
        """Ground-truth links as sorted pairs."""
        return self.call(lambda: established_links(self.members))

    def tables(self) -> dict[str, dict]:
        """Every live member's routing table (read on the loop thread)."""
        return self.call(lambda: {m: dict(mm.routes) for m, mm in self.members.items()})

    # --- faults --------------------------------------------------------------------------

    def _conns_between(self, a: str, b: str) -> list[tuple[TcpTransport, int]]:
        out = []
        for x, y in ((a, b), (b, a)):
            t = self.transports.get(x)
            if t is not None and x in self.members:
                out += [(t, h) for h, c in t.conns.items() if c.remote_host == y]
        return out

    def link_down(self, a: str, b: str, *, silent: bool = False) -> int:
        """Cut the path between a and b: closed (both told) or silent; returns conns cut."""

        def cut() -> int:
            self.policy.cuts.add(frozenset((a, b)))
            conns = self._conns_between(a, b)
            if not silent:
                for t, h in conns:
                    t.drop_connection(h, "link down")
            return len(conns)

        return self.call(cut)

    def link_up(self, a: str, b: str, *, connect: bool = True) -> None:
        """Restore the path between a and b and (by default) have a dial b."""

        def restore() -> None:
            self.policy.cuts.discard(frozenset((a, b)))
            if connect and a in self.members and b in self.members:
                self.members[a].connect(self.addresses[b])

        self.call(restore)

    def partition(self, groups: Sequence[Iterable[str]], *, one_way: bool = False) -> None:
        """Hold back every byte between groups (one-way: only from group 0) until heal."""
        mapping = {m: i for i, g in enumerate(groups) for m in g}

        def apply() -> None:
            self.policy.groups = mapping
            self.policy.one_way = one_way

        self.call(apply)

    def heal(self) -> None:
        """End the partition; held bytes go on their way."""

        def apply() -> None:
            self.policy.groups = {}
            for t in self.transports.values():
                if not t.closed:
                    t.release_held()

        self.call(apply)

    def crash(self, member_id: str) -> None:
        """Kill a member: its connections are reset, its state is lost."""

        def kill() -> None:
            take_running(self.members, member_id)
            self.transports[member_id].abort()

        self.call(kill)

    def power_off(self, member_id: str) -> None:
        """Silence a member without telling anyone; peers notice by keepalive timeout."""

        def off() -> None:
            take_running(self.members, member_id)
            self.policy.dead.add(member_id)
            t = self.transports[member_id]
            t.pause()  # its sockets leave the selector, open and silent
            t.closed = True  # no more callbacks: the member's timers and reads stop

        self.call(off)

    def pause(self, member_id: str) -> None:
        """Stop a member processing anything, as a stopped process: bytes wait in the kernel,
        timers wait; :meth:`resume` goes on with all of it."""
        self.call(lambda: self._transport_of(member_id).pause())

    def resume(self, member_id: str) -> None:
        """Let a paused member go on with everything that waited."""
        self.call(lambda: self._transport_of(member_id).resume())

    def _transport_of(self, member_id: str) -> TcpTransport:
        running_member(self.members, member_id)
        return self.transports[member_id]

    def restart(self, member_id: str, *, join: Iterable[str] = ()) -> Member:
        """Bring a crashed or powered-off member back: fresh state, same id and address."""
        join = list(join)

        def again() -> Member:
            old = self.transports.get(member_id)
            if old is not None:
                old.shutdown()
            return self._add(member_id, join, None)

        return self.call(again)

    def leave(self, member_id: str) -> None:
        """Graceful leave: Bye and a final advert, then the member is gone."""

        def go() -> None:
            member = take_running(self.members, member_id)
            t = self.transports[member_id]
            t.resume()  # leaving ends a pause: it says goodbye now
            member.leave()
            t.stop_listening()
            t.loop.call_later(1.0, t.shutdown)  # what leave() sent has a second to go out

        self.call(go)

    def join(self, member_id: str, connect: Iterable[str]) -> Member:
        """Start a new member that dials ``connect``."""
        return self.add_member(member_id, join=connect)


__all__ = ["NetPolicy", "TcpNetwork", "format_address"]
