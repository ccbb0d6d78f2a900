"""SimNetwork: members in one SimPy environment, joined by modelled TCP connections.

Everything random comes from one seeded ``random.Random``; everything iterated is ordered; so a
seed gives a byte-identical trace whatever the hash seed. Delivery uses SimPy event callbacks, not
a process per message.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from peerlab.faults import FaultReport
from peerlab.identity import SIM_EPOCH, RunCredentials
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
from peerlab.sim.clock import Clock
from peerlab.sim.events import Arrival
from peerlab.sim.links import FIN, RST, Pipe
from peerlab.sim.transport import SimEnd, SimTransport
from peerlab.trace import Tracer

if TYPE_CHECKING:
    from peerlab.scenario import Scenario

ADDRESS_PREFIX = "sim:"
T = TypeVar("T")


class SimNetwork:
    """A simulated overlay: add members, link them, inject faults, run the clock.

    A :class:`~peerlab.network.Network`: scenario time is simulated time.
    """

    poll_interval = 0.01

    def __init__(
        self,
        seed: int = 0,
        *,
        defaults: LinkModel | None = None,
        config: MemberConfig | None = None,
        tracer: Tracer | None = None,
        connect_timeout: float = 3.0,
        chunking: bool = True,
        split_probability: float = 0.2,
        member_class: type[Member] = Member,
        security: str = "open",
    ) -> None:
        self.clock = Clock()
        self._time = self.clock.time
        self.member_class = member_class
        self.seed = seed
        self.rng = random.Random(seed)
        self.defaults = defaults or LinkModel()
        self.config = config or MemberConfig()
        self.tracer = tracer if tracer is not None else Tracer()
        self.connect_timeout = connect_timeout
        self.chunking = chunking
        self.split_probability = split_probability
        #: secure mode's network and identities (None in open mode)
        self.credentials = (
            RunCredentials(seed, lambda: SIM_EPOCH + self.clock.now, simulated=True)
            if security == "signed"
            else None
        )
        self.cache = AdvertCache(trust=self.credentials and self.credentials.trust)
        self.transports: dict[str, SimTransport] = {}
        self.members: dict[str, Member] = {}
        self.incarnations: dict[str, int] = {}
        self.powered_off: set[str] = set()
        self.faults: list[FaultReport] = []
        self._links: dict[frozenset[str], LinkModel] = {}
        self._cuts: dict[frozenset[str], FaultReport] = {}
        self._groups: dict[str, int] = {}
        self._partition: FaultReport | None = None
        # shared by every Arrival of bytes, and of FIN or RST; SimPy only reads them
        self._arrival_callbacks = [self._deliver_chunk if chunking else self._deliver]
        self._signal_callbacks = [self._deliver_signal]
        self._one_way = False
        self._holding: list[Pipe] = []
        self.on_deliver: Callable[[str, object], None] | None = None

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        *,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] | None = None,
    ) -> SimNetwork:
        """A network for a scenario (``time_scale`` means nothing here: the simulation runs as
        fast as the CPU allows)."""
        net = cls(
            scenario.seed,
            defaults=LinkModel.of(scenario.defaults),
            config=config,
            tracer=tracer,
            member_class=member_class or Member,
            security=scenario.security,
        )
        set_scenario_links(net, scenario)
        return net

    # --- clock ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.clock.now

    def start_clock(self) -> None:
        """Nothing to do: setting up takes no simulated time."""

    def advance_to(self, t: float) -> None:
        """Run the simulation up to simulated time ``t``."""
        self.clock.run(t)

    def scenario_time(self, member_time: float) -> float:
        """Members read the simulated clock: the same time."""
        return member_time

    def member_clock(self) -> float:
        """What the members' clock reads: simulated time."""
        return self.clock.now

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (the simulation is not running meanwhile)."""
        return fn()

    def close(self) -> None:
        """Nothing to release in a simulation."""

    def send_burst(self, sends: Sequence[tuple[str, str, bytes, bool]]) -> None:
        """Have each running ``(src, dst, payload, reliable)`` send, at this simulated instant."""
        members = self.members
        for src, dst, payload, reliable in sends:
            members[src].send(dst, payload, reliable=reliable)

    def loop_lag(self) -> LoopLag:
        """No loop ever runs late in a simulation."""
        return LoopLag()

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay`` simulated seconds."""
        self.clock.schedule(delay, fn)

    def run(self, duration: float) -> None:
        """Advance the simulation by ``duration`` seconds."""
        self.clock.run(self.clock.now + duration)

    def run_until(
        self, predicate: Callable[[], bool], timeout: float, check_every: float = 0.01
    ) -> bool:
        """Advance until ``predicate()`` holds (checked every ``check_every`` s) or timeout."""
        clock = self.clock
        end = clock.now + timeout
        while not predicate():
            if clock.now >= end:
                return False
            clock.run(min(end, clock.now + check_every))
        return True

    # --- building ------------------------------------------------------------------------

    def address_of(self, member_id: str) -> str:
        """The simulated listen address of a member."""
        return ADDRESS_PREFIX + member_id

    def set_link(self, a: str, b: str, model: LinkModel) -> None:
        """Use ``model`` between ``a`` and ``b`` from now on, on the connections they hold
        (bytes already on their way keep their arrival) and on those they open later."""
        self._links[frozenset((a, b))] = model
        for x, y in ((a, b), (b, a)):
            for end in self._ends_between(x, y):
                end.out.model = model

    def link_model(self, a: str, b: str) -> LinkModel:
        """The model used between ``a`` and ``b``."""
        return self._links.get(frozenset((a, b)), self.defaults)

    def add_member(
        self, member_id: str, *, join: Iterable[str] = (), config: MemberConfig | None = None
    ) -> Member:
        """Create and start a member; ``join`` lists member ids to dial."""
        if member_id in self.members:
            raise ValueError(f"member {member_id!r} already exists")
        incarnation = self.incarnations.get(member_id, 0) + 1
        self.incarnations[member_id] = incarnation
        self.powered_off.discard(member_id)
        transport = SimTransport(self, member_id, self.address_of(member_id))
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
        self.transports[member_id] = transport
        self.members[member_id] = member
        member.start(join=[self.address_of(j) for j in join])
        return member

    def connect(self, a: str, b: str) -> None:
        """Have member ``a`` dial member ``b``."""
        running_member(self.members, a).connect(self.address_of(b))

    def adjacency(self) -> dict[str, set[str]]:
        """Ground truth: pairs of live members that both hold an established connection."""
        return established_adjacency(self.members)

    def links(self) -> list[tuple[str, str]]:
        """Ground-truth links as sorted pairs."""
        return established_links(self.members)

    # --- faults --------------------------------------------------------------------------

    def _report(self, kind: str, target: str) -> FaultReport:
        report = FaultReport(kind, self.clock.now, target)
        self.faults.append(report)
        return report

    def _ends_between(self, a: str, b: str) -> list[SimEnd]:
        ta = self.transports.get(a)
        if ta is None:
            return []
        return [e for e in ta.ends if e.out.dst == b]

    def link_down(self, a: str, b: str, *, silent: bool = False) -> FaultReport:
        """Cut the path between ``a`` and ``b``; closed (both told) or silent (nobody told)."""
        report = self._report("link_cut" if silent else "link_down", f"{a}-{b}")
        self._cuts[frozenset((a, b))] = report
        for x, y in ((a, b), (b, a)):
            for end in self._ends_between(x, y):
                report.conns_cut += 1 if x == a else 0
                report.members_affected.update((x, y))
                if silent:
                    end.out.dead = True
                    continue
                transport = end.transport
                del transport.ends[end]
                end.closed = True
                transport.dispatch(
                    lambda t=transport, h=end: t.handler.connection_lost(h, "link down")
                )
        return report

    def link_up(self, a: str, b: str, *, connect: bool = True) -> FaultReport:
        """Restore the path between ``a`` and ``b`` and (by default) have ``a`` dial ``b``."""
        report = self._report("link_up", f"{a}-{b}")
        self._cuts.pop(frozenset((a, b)), None)
        if a in self.members and b in self.members:  # the two may link now (and are dialled)
            report.members_affected.update((a, b))
            if connect:
                self.connect(a, b)
        return report

    def partition(self, groups: Sequence[Iterable[str]], *, one_way: bool = False) -> FaultReport:
        """Split members into groups that cannot exchange bytes (one-way: group 0 cannot send
        to the others, the others can still send to it). Bytes are held back until heal."""
        self._release(None)
        self._groups = {m: i for i, group in enumerate(groups) for m in group}
        self._one_way = one_way
        name = " | ".join(",".join(sorted(g)) for g in (list(g) for g in groups))
        report = self._report("partition_one_way" if one_way else "partition", name)
        report.members_affected.update(m for m in self._groups if m in self.members)
        self._partition = report
        return report

    def heal(self) -> FaultReport:
        """End the partition; held bytes continue on their way."""
        report = self._report("heal", "all")
        report.members_affected.update(m for m in self._groups if m in self.members)
        self._release(report)
        return report

    def _release(self, report: FaultReport | None) -> None:
        """End the partition (if any): what it held goes on, counted in ``report``."""
        self._groups = {}
        self._partition = None
        holding, self._holding = self._holding, []
        for pipe in holding:
            held, pipe.held = pipe.held, []
            if report is not None:
                report.bytes_held += sum(len(x) for x in held if isinstance(x, bytes))
                report.members_affected.update((pipe.src, pipe.dst))
            for item in held:
                if isinstance(item, bytes):
                    self.send(pipe.source, item, released=True)
                else:
                    self.signal(pipe, item)

    def crash(self, member_id: str) -> FaultReport:
        """Kill a member's process: the OS resets its connections; its state is lost."""
        transport = self._kill(member_id)
        report = self._report("crash", member_id)
        report.members_affected.add(member_id)
        for end in transport.ends:  # in the order they were made
            report.conns_cut += 1
            report.members_affected.add(end.out.dst)
            end.closed = True
            self.signal(end.out, RST)
        transport.ends.clear()
        return report

    def power_off(self, member_id: str) -> FaultReport:
        """Switch a member's machine off: nobody is told; peers notice by keepalive timeout."""
        transport = self._kill(member_id)
        report = self._report("power_off", member_id)
        self.powered_off.add(member_id)
        report.members_affected.add(member_id)
        for end in transport.ends:
            report.conns_cut += 1
            report.members_affected.add(end.out.dst)
            end.out.dead = True
            peer = self.transports.get(end.out.dst)
            if peer is not None:
                for back in peer.ends:
                    if back.out.end is end:
                        back.out.dead = True
        return report

    def restart(self, member_id: str, *, join: Iterable[str] = ()) -> FaultReport:
        """Bring a crashed or powered-off member back with fresh state, same id and address."""
        report = self._report("restart", member_id)
        if member_id in self.members:
            raise ValueError(f"member {member_id!r} is running; crash or power it off first")
        self.add_member(member_id, join=join)
        report.members_affected.add(member_id)
        return report

    def pause(self, member_id: str) -> FaultReport:
        """Stop a member processing anything (bytes and timers queue up)."""
        running_member(self.members, member_id)
        report = self._report("pause", member_id)
        self.transports[member_id].paused = True
        report.members_affected.add(member_id)
        return report

    def resume(self, member_id: str) -> FaultReport:
        """Let a paused member go on with everything that queued up."""
        running_member(self.members, member_id)
        report = self._report("resume", member_id)
        report.chunks_held = self.transports[member_id].resume()
        report.members_affected.add(member_id)
        return report

    def leave(self, member_id: str) -> FaultReport:
        """Graceful leave: Bye and a final advert, then the member is gone."""
        member = take_running(self.members, member_id)
        report = self._report("leave", member_id)
        report.members_affected.update([member_id, *member.neighbours])
        report.conns_cut = len(member.neighbours)
        self.transports[member_id].resume()  # leaving ends a pause: it says goodbye now
        member.leave()
        self.transports[member_id].listening = False
        return report

    def join(self, member_id: str, connect: Iterable[str]) -> FaultReport:
        """Start a new member that dials ``connect``."""
        report = self._report("join", member_id)
        connect = list(connect)
        self.add_member(member_id, join=connect)
        report.members_affected.update([member_id, *connect])
        return report

    def unaffected_faults(self) -> list[FaultReport]:
        """Faults that hit nothing: a scenario relying on them would be falsely green."""
        return [f for f in self.faults if not f.hit]

    def _kill(self, member_id: str) -> SimTransport:
        take_running(self.members, member_id)
        transport = self.transports[member_id]
        transport.alive = False
        transport.listening = False
        return transport

    # --- the wire: what the transports call ----------------------------------------------

    def _blocker(self, src: str, dst: str) -> FaultReport | None:
        cut = self._cuts.get(frozenset((src, dst)))
        if cut is not None:
            return cut
        if self._partition is not None:
            gs, gd = self._groups.get(src), self._groups.get(dst)
            if gs is not None and gd is not None and gs != gd and (not self._one_way or gs == 0):
                return self._partition
        return None

    def dial(self, dialer: SimTransport, address: str) -> None:
        """A transport's ``connect``: a SYN crosses the link, then the connection is made, or
        the dial fails (refused, or timed out behind a fault or at a powered-off member)."""
        target = address[len(ADDRESS_PREFIX) :] if address.startswith(ADDRESS_PREFIX) else None
        src = dialer.host
        model = self.link_model(src, target or "")
        latency = model.setup_delay(self.rng)

        def fail(reason: str, after: float) -> None:
            self.schedule(
                after,
                lambda: dialer.dispatch(lambda: dialer.handler.connect_failed(address, reason)),
            )

        def syn_arrives() -> None:
            if not dialer.alive:
                return
            acceptor = self.transports.get(target) if target is not None else None
            blocker = self._blocker(src, target) or (
                self._blocker(target, src) if target is not None else None
            )
            if blocker is not None:
                blocker.connects_blocked += 1
                fail("connection timed out", self.connect_timeout - latency)
            elif acceptor is None or target in self.powered_off:
                fail("connection timed out", self.connect_timeout - latency)
            elif not acceptor.listening:
                fail("connection refused", latency)
            else:
                self._establish(dialer, acceptor, address, model, latency)

        self.schedule(latency, syn_arrives)

    def _establish(
        self,
        dialer: SimTransport,
        acceptor: SimTransport,
        address: str,
        model: LinkModel,
        latency: float,
    ) -> None:
        now = self.clock.now
        forward = Pipe(dialer.host, acceptor.host, model, busy_until=now, last_arrival=now)
        backward = Pipe(
            acceptor.host, dialer.host, model, busy_until=now, last_arrival=now + latency
        )
        a = SimEnd(dialer, forward)
        b = SimEnd(acceptor, backward)
        forward.end, backward.end = b, a
        forward.source, backward.source = a, b
        dialer.ends[a] = None
        acceptor.ends[b] = None

        def dialer_connected() -> None:
            if a in dialer.ends:
                dialer.dispatch(lambda: dialer.handler.connection_made(a, True, address))
            else:  # closed (a link went down) before the dialer heard it was made: to the
                # dialer, the dial failed, and it must hear so to dial again
                dialer.dispatch(lambda: dialer.handler.connect_failed(address, "connection reset"))

        self.schedule(latency, dialer_connected)
        acceptor.dispatch(lambda: acceptor.handler.connection_made(b, False, dialer.listen_address))

    def send(self, end: SimEnd, data: bytes, released: bool = False) -> None:
        """A transport's ``send`` on ``end`` (each transport's is this very method): put the
        bytes into the end's pipe, queued behind the bytes before them (bandwidth), then
        carried for the link's one-way delay, arriving in order. Ignored on a closed end,
        unless they are bytes a fault held back (``released``), which go on before the FIN."""
        if (end.closed and not released) or not data:
            return
        pipe = end.out
        # most frames travel while no fault is active: no lookup (and no call) for them
        if pipe.dead or ((self._cuts or self._partition is not None) and self._held(pipe, data)):
            return
        previous = pipe.last_arrival
        arrival = pipe.model.arrival(pipe, self._time(), len(data), self.rng)
        if self.chunking:
            if not self._rechunked(pipe, data, arrival, arrival == previous):
                self._push(pipe, data, arrival, self._arrival_callbacks)
            return
        # _push, inline for the common case: one chunk per write, none merged into (no pipe.last)
        event = Arrival()
        event.callbacks = self._arrival_callbacks
        event.item = data
        event.pipe = pipe
        self.clock.push(arrival, event)

    def signal(self, pipe: Pipe, signal: str) -> None:
        """Send FIN or RST down ``pipe``, after every byte already in it."""
        if pipe.dead or ((self._cuts or self._partition is not None) and self._held(pipe, signal)):
            return
        arrival = max(self._time() + pipe.model.one_way(self.rng), pipe.last_arrival)
        pipe.last_arrival = arrival
        self._push(pipe, signal, arrival, self._signal_callbacks)

    def _push(self, pipe: Pipe, item: bytes | str, arrival: float, callbacks: list) -> None:
        """Schedule ``item``'s arrival at the far end of ``pipe`` at simulated time ``arrival``."""
        event = Arrival()
        event.callbacks = callbacks
        event.item = item
        event.pipe = pipe
        pipe.last = event
        self.clock.push(arrival, event)

    def _rechunked(self, pipe: Pipe, item: bytes, arrival: float, merge: bool) -> bool:
        """The seeded chunker: whether it took ``item``, merging it into the chunk before it
        (both arrive at once and that one is still on its way: ``pipe.last``) or pushing it
        split in two; if not, ``item`` travels whole."""
        rng = self.rng
        last = pipe.last
        if merge and last is not None and isinstance(last.item, bytes) and rng.random() < 0.5:
            last.item += item
            return True
        if len(item) > 1 and rng.random() < self.split_probability:
            cut = rng.randrange(1, len(item))
            self._push(pipe, item[:cut], arrival, self._arrival_callbacks)
            self._push(pipe, item[cut:], arrival, self._arrival_callbacks)
            return True
        return False

    def _held(self, pipe: Pipe, item: bytes | str) -> bool:
        """Whether a fault stops ``item`` on ``pipe``: if so it is kept back until the fault
        ends, and counted against the fault."""
        blocker = self._blocker(pipe.src, pipe.dst)
        if blocker is None:
            return False
        if not pipe.held:
            self._holding.append(pipe)
        pipe.held.append(item)
        if isinstance(item, bytes):
            blocker.bytes_held += len(item)
            blocker.chunks_held += 1
        blocker.members_affected.update((pipe.src, pipe.dst))
        return True

    def _deliver_chunk(self, event: Arrival) -> None:
        pipe = event.pipe
        if pipe.last is event:
            pipe.last = None  # nothing merges into a chunk delivered, and its bytes can go
        self._deliver(event)

    def _deliver(self, event: Arrival) -> None:
        end = event.pipe.end
        transport = end.transport
        if end.closed or not transport.alive:
            return
        if transport.paused:
            # the transport as a default, not a closure: a closure would make it a cell on
            # every delivery, paused or not
            transport.dispatch(
                lambda t=transport, h=end, d=event.item: t.handler.data_received(h, d)
            )
        else:
            transport.handler.data_received(end, event.item)

    def _deliver_signal(self, event: Arrival) -> None:
        end = event.pipe.end
        transport = end.transport
        if end.closed or not transport.alive:
            return
        end.closed = True
        del transport.ends[end]
        reason = "closed by peer" if event.item is FIN else "connection reset by peer"
        transport.dispatch(lambda t=transport, h=end, r=reason: t.handler.connection_lost(h, r))
