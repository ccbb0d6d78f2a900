"""TcpNetwork: a whole overlay of real members on loopback, in one process.

All members share one :class:`~peerlab.realnet.loop.EventLoop` thread (every member callback
runs there; the GIL would serialise one thread per member anyway). Faults the OS cannot produce
on loopback (partitions, silent cuts, power-off, per-link latency) are emulated inside the
transports by a :class:`NetPolicy`. Every control call is handed to the loop thread-safely.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from peerlab.faults import FaultReport
from peerlab.identity import RunCredentials
from peerlab.linkmodel import LinkModel
from peerlab.linkstate import AdvertCache
from peerlab.member import (
    Member,
    MemberConfig,
    established_adjacency,
    established_links,
    running_member,
    take_running,
)
from peerlab.network import LoopLag, set_scenario_links
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.transport import Policy, TcpLimits, TcpTransport, format_address, parse_address
from peerlab.realnet.wallclock import WallClock, stretched
from peerlab.trace import Tracer

if TYPE_CHECKING:
    from peerlab.scenario import Scenario

T = TypeVar("T")


class NetPolicy(Policy):
    """Knows which in-process member owns which socket, and applies emulated faults and the
    links' models (``links`` by pair of members, ``default`` for any other pair; None: no
    model, bytes go at once)."""

    passthrough = False  # faults and link models can be switched on at any time

    def __init__(self, seed: int | str = 0) -> None:
        self.sock_owner: dict[tuple, str] = {}
        self.ip_owner: dict[str, str] = {}  # when each member has its own loopback address
        self.address_owner: dict[str, str] = {}
        self.cuts: set[frozenset[str]] = set()
        self.dead: set[str] = set()
        self.groups: dict[str, int] = {}
        self.one_way = False
        self.links: dict[frozenset[str], LinkModel] = {}
        self.default: LinkModel | None = None
        self.rng = random.Random(f"{seed}:links")

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

    def link(self, src: str | None, dst: str | None) -> LinkModel | None:
        if src is None or dst is None or not self.links:
            return self.default
        return self.links.get(frozenset((src, dst)), self.default)


class TcpNetwork(WallClock):
    """Real members on 127.0.0.1: a :class:`~peerlab.network.Network` whose scenario time is
    the wall clock (stretched by ``time_scale``)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        config: MemberConfig | None = None,
        tracer: Tracer | None = None,
        host: str = "127.0.0.1",
        limits: TcpLimits | None = None,
        member_class: type[Member] = Member,
        time_scale: float = 1.0,
        security: str = "open",
        tls: bool = False,
    ) -> None:
        if tls and security != "signed":
            raise ValueError("TLS needs secure mode (security='signed')")
        self.seed = seed
        self.tls = tls
        self.time_scale = time_scale
        self.member_class = member_class
        self.config = stretched(config or MemberConfig(), time_scale)
        self.tracer = tracer if tracer is not None else Tracer()
        self.host = host
        self.limits = limits or TcpLimits()
        self.policy = NetPolicy(seed)
        #: secure mode's network and identities (None in open mode)
        self.credentials = (
            RunCredentials(seed, time.time, simulated=False) if security == "signed" else None
        )
        self.cache = AdvertCache(trust=self.credentials and self.credentials.trust)
        self.loop = EventLoop("peerlab-tcpnet").start()
        self.transports: dict[str, TcpTransport] = {}
        self.members: dict[str, Member] = {}
        self.addresses: dict[str, str] = {}
        self.incarnations: dict[str, int] = {}
        self.on_deliver: Callable[[str, object], None] | None = None
        self.faults: list[FaultReport] = []
        self._sources: dict[str, int] = {}
        self._closed = False
        self.start_clock()

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        *,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] | None = None,
    ) -> TcpNetwork:
        """A network for a scenario, its links' models applied."""
        net = cls(
            scenario.seed,
            config=config,
            tracer=tracer,
            member_class=member_class or Member,
            time_scale=time_scale,
            security=scenario.security,
            tls=scenario.tls,
        )
        net.defaults = LinkModel.of(scenario.defaults)
        set_scenario_links(net, scenario)
        return net

    # --- plumbing ------------------------------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop thread and return its result."""
        return self.loop.call(fn, timeout)

    def member_clock(self) -> float:
        """The loop's clock, which members read."""
        return self.loop.now()

    def send_burst(self, sends: Sequence[tuple[str, str, bytes, bool]]) -> None:
        """Have each running ``(src, dst, payload, reliable)`` send, in one pass of the loop."""

        def burst() -> None:
            for src, dst, payload, reliable in sends:
                self.members[src].send(dst, payload, reliable=reliable)

        self.call(burst)

    def start_clock(self) -> None:
        """Make now scenario time 0; the loop's stalls count from now."""
        self.call(self.loop.take_lag)
        super().start_clock()

    def loop_lag(self) -> LoopLag:
        """The worst stall of the one loop every member runs on since the clock started."""
        seconds, at = self.call(self.loop.take_lag)
        if not seconds:
            return LoopLag()
        return LoopLag(seconds / self.time_scale, None, round(self.scenario_time(at), 6))

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
    def defaults(self) -> LinkModel | None:
        """The model of links between members with none of their own (None: bytes go at
        once)."""
        return self.policy.default

    @defaults.setter
    def defaults(self, model: LinkModel | None) -> None:
        model = None if model is None else model.stretched(self.time_scale)
        self.call(lambda: setattr(self.policy, "default", model))

    def set_link(self, a: str, b: str, model: LinkModel) -> None:
        """Use ``model`` between ``a`` and ``b`` from now on, on the connections they hold
        (bytes already held back keep their time) and on those they open later."""
        pair, model = frozenset((a, b)), model.stretched(self.time_scale)
        self.call(lambda: self.policy.links.__setitem__(pair, model))

    def link_model(self, a: str, b: str) -> LinkModel | None:
        """The model used between ``a`` and ``b``."""
        return self.policy.link(a, b)

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
            self.loop,
            self.host,
            port,
            name=member_id,
            limits=self.limits,
            policy=self.policy,
            source_host=self._source_of(member_id),
            tls=self.credentials.tls(member_id) if self.tls else None,
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
            identity=self.credentials and self.credentials.identity(member_id),
        )
        transport.handler = member
        transport.start()
        self.transports[member_id] = transport
        self.members[member_id] = member
        member.start(join=[self.addresses[j] for j in join])
        return member

    def _source_of(self, member_id: str) -> str | None:
        """The loopback address ``member_id`` dials from, its own (127.1.x.y), so that its
        peers' books on remote addresses (connections, handshakes, misbehaviour) are kept per
        member, as between machines; None when the network does not listen on loopback."""
        if not self.host.startswith("127."):
            return None
        n = self._sources.setdefault(member_id, len(self._sources))
        return f"127.1.{n // 250}.{n % 250 + 1}"

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

    def _report(self, kind: str, target: str) -> FaultReport:
        report = FaultReport(kind, round(self.now, 6), target)
        self.faults.append(report)
        return report

    def _peers_of(self, member_id: str) -> list[str]:
        member = self.members.get(member_id)
        return member.neighbours if member is not None else []

    def link_down(self, a: str, b: str, *, silent: bool = False) -> FaultReport:
        """Cut the path between a and b: closed (both told) or silent (nobody told)."""
        report = self._report("link_cut" if silent else "link_down", f"{a}-{b}")

        def cut() -> None:
            self.policy.cuts.add(frozenset((a, b)))
            for x, y in ((a, b), (b, a)):
                t = self.transports.get(x)
                handles = t.connections_to(y) if t is not None and x in self.members else []
                if handles:
                    report.members_affected.update((x, y))
                    report.conns_cut += len(handles) if x == a else 0
                for handle in [] if silent else handles:
                    t.drop_connection(handle, "link down")

        self.call(cut)
        return report

    def link_up(self, a: str, b: str, *, connect: bool = True) -> FaultReport:
        """Restore the path between a and b and (by default) have a dial b."""
        report = self._report("link_up", f"{a}-{b}")

        def restore() -> None:
            self.policy.cuts.discard(frozenset((a, b)))
            if a in self.members and b in self.members:  # the two may link now
                report.members_affected.update((a, b))
                if connect:
                    self.members[a].connect(self.addresses[b])

        self.call(restore)
        return report

    def partition(self, groups: Sequence[Iterable[str]], *, one_way: bool = False) -> FaultReport:
        """Hold back every byte between groups (one-way: only from group 0) until heal."""
        groups = [sorted(g) for g in groups]
        name = " | ".join(",".join(g) for g in groups)
        report = self._report("partition_one_way" if one_way else "partition", name)
        mapping = {m: i for i, g in enumerate(groups) for m in g}

        def apply() -> None:
            self.policy.groups = mapping
            self.policy.one_way = one_way
            report.members_affected.update(m for m in mapping if m in self.members)

        self.call(apply)
        return report

    def heal(self) -> FaultReport:
        """End the partition; held bytes go on their way."""
        report = self._report("heal", "all")

        def apply() -> None:
            report.members_affected.update(m for m in self.policy.groups if m in self.members)
            self.policy.groups = {}
            for t in self.transports.values():
                if not t.closed:
                    report.bytes_held += t.release_held()

        self.call(apply)
        return report

    def crash(self, member_id: str) -> FaultReport:
        """Kill a member: its connections are reset, its state is lost."""
        report = self._report("crash", member_id)

        def kill() -> None:
            peers = self._peers_of(member_id)
            take_running(self.members, member_id)
            t = self.transports[member_id]
            report.conns_cut = len(t.conns)
            report.members_affected.update([member_id, *peers])
            t.abort()

        self.call(kill)
        return report

    def power_off(self, member_id: str) -> FaultReport:
        """Silence a member without telling anyone; peers notice by keepalive timeout."""
        report = self._report("power_off", member_id)

        def off() -> None:
            peers = self._peers_of(member_id)
            take_running(self.members, member_id)
            self.policy.dead.add(member_id)
            t = self.transports[member_id]
            report.conns_cut = len(t.conns)
            report.members_affected.update([member_id, *peers])
            t.power_off()

        self.call(off)
        return report

    def pause(self, member_id: str) -> FaultReport:
        """Stop a member processing anything, as a stopped process: bytes wait in the kernel,
        timers wait; :meth:`resume` goes on with all of it."""
        report = self._report("pause", member_id)
        report.members_affected.add(member_id)
        self.call(lambda: self._transport_of(member_id).pause())
        return report

    def resume(self, member_id: str) -> FaultReport:
        """Let a paused member go on with everything that waited."""
        report = self._report("resume", member_id)
        report.members_affected.add(member_id)
        report.chunks_held = self.call(lambda: self._transport_of(member_id).resume())
        return report

    def _transport_of(self, member_id: str) -> TcpTransport:
        running_member(self.members, member_id)
        return self.transports[member_id]

    def restart(self, member_id: str, *, join: Iterable[str] = ()) -> FaultReport:
        """Bring a crashed or powered-off member back: fresh state, same id and address."""
        report = self._report("restart", member_id)
        join = list(join)

        def again() -> None:
            if member_id in self.members:
                raise ValueError(f"member {member_id!r} is running; crash or power it off first")
            old = self.transports.get(member_id)
            if old is not None:
                old.shutdown()
            self._add(member_id, join, None)

        self.call(again)
        report.members_affected.add(member_id)
        return report

    def leave(self, member_id: str) -> FaultReport:
        """Graceful leave: Bye and a final advert, then the member is gone."""
        report = self._report("leave", member_id)

        def go() -> None:
            member = take_running(self.members, member_id)
            report.members_affected.update([member_id, *member.neighbours])
            report.conns_cut = len(member.neighbours)
            t = self.transports[member_id]
            t.resume()  # leaving ends a pause: it says goodbye now
            member.leave()
            t.stop_listening()
            t.loop.call_later(1.0, t.shutdown)  # what leave() sent has a second to go out

        self.call(go)
        return report

    def join(self, member_id: str, connect: Iterable[str]) -> FaultReport:
        """Start a new member that dials ``connect``."""
        report = self._report("join", member_id)
        connect = list(connect)
        self.add_member(member_id, join=connect)
        report.members_affected.update([member_id, *connect])
        return report


__all__ = ["NetPolicy", "TcpNetwork", "format_address"]
