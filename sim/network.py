"""SimNetwork: members in one SimPy environment, joined by modelled TCP connections.

Everything random comes from one seeded ``random.Random``; everything iterated is ordered; so a
seed gives a byte-identical trace whatever the hash seed. Delivery uses SimPy event callbacks, not
a process per message.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from heapq import heappop, heappush

import simpy
from simpy.events import NORMAL

from peerlab.collector import cycle_collection_paused
from peerlab.linkstate import AdvertCache
from peerlab.member import (
    Member,
    MemberConfig,
    established_adjacency,
    established_links,
    running_member,
    take_running,
)
from peerlab.sim.events import Arrival, Due, SimTimer
from peerlab.sim.faults import FaultReport
from peerlab.sim.links import FIN, RST, LinkModel, Pipe
from peerlab.sim.transport import SimEnd, SimTransport
from peerlab.trace import Tracer

ADDRESS_PREFIX = "sim:"


class SimNetwork:
    """A simulated overlay: add members, link them, inject faults, run the clock."""

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
    ) -> None:
        self.env = simpy.Environment()
        self.member_class = member_class
        self.seed = seed
        self.rng = random.Random(seed)
        self.defaults = defaults or LinkModel()
        self.config = config or MemberConfig()
        self.tracer = tracer if tracer is not None else Tracer()
        self.connect_timeout = connect_timeout
        self.chunking = chunking
        self.split_probability = split_probability
        self.cache = AdvertCache()
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
        # Members' timers wait in a heap of their own, (due, order made, timer), with a SimPy
        # event only at the earliest: keepalive ticks and handshake deadlines (most of them
        # cancelled long before due, and SimPy cannot unqueue an event) would otherwise be half
        # of SimPy's queue, making every chunk in flight dearer to schedule and to take.
        self._timers: list[tuple[float, int, SimTimer]] = []
        self._timer_order = itertools.count()
        self._wakes: list[float] = []  # when the SimPy events that run due timers fall
        self._wake_callbacks = [self._wake]
        self._one_way = False
        self._holding: list[Pipe] = []
        self.on_deliver: Callable[[str, object], None] | None = None

    # --- clock ---------------------------------------------------------------------------
    # Per hop the clock is read three times (the pipe's write, its delivery, the member's
    # "last heard"); those reads take SimPy's ``_now`` attribute, which its ``now`` property
    # returns, without the property's Python call: 4% of a routed hop's instructions.
    # tests/test_sim.py holds the two equal. Likewise a chunk in flight is pushed on SimPy's
    # heap (``_queue``, ids from ``_eid``) as ``Environment.schedule`` would push it, without
    # that method's call: 1.3% of a hop. pyproject.toml keeps SimPy below 5 for these.

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.env.now

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay`` simulated seconds (a SimPy callback, no process)."""
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        event = Due()
        event.callbacks = [lambda _event: fn()]
        self.env.schedule(event, NORMAL, delay)

    def _add_timer(self, delay: float, timer: SimTimer) -> None:
        """Queue a member's timer to run ``delay`` seconds from now."""
        due = self.env._now + delay
        heappush(self._timers, (due, next(self._timer_order), timer))
        if not self._wakes or due < self._wakes[0]:
            self._wake_at(due)

    def _wake_at(self, due: float) -> None:
        heappush(self._wakes, due)
        event = Due()
        event.callbacks = self._wake_callbacks
        env = self.env
        # pushed as env.schedule would, but at ``due`` exactly (now + (due - now) may round)
        heappush(env._queue, (due, NORMAL, next(env._eid), event))

    def _wake(self, _event: Due) -> None:
        """Run the timers due now, in the order they were made, then wake for the next one.
        Timers made while these run wait for a wake of their own, after the events queued
        for now already, as on SimPy's queue."""
        now = heappop(self._wakes)
        timers = self._timers
        due = []
        while timers and timers[0][0] <= now:
            due.append(heappop(timers)[2])
        for timer in due:
            if not timer.cancelled:
                timer.transport.dispatch(timer.fire)
        if timers and (not self._wakes or timers[0][0] < self._wakes[0]):
            self._wake_at(timers[0][0])

    def run(self, duration: float) -> None:
        """Advance the simulation by ``duration`` seconds."""
        with cycle_collection_paused():
            self.env.run(until=self.env.now + duration)

    def run_until(
        self, predicate: Callable[[], bool], timeout: float, check_every: float = 0.01
    ) -> bool:
        """Advance until ``predicate()`` holds (checked every ``check_every`` s) or timeout."""
        end = self.env.now + timeout
        with cycle_collection_paused():
            while not predicate():
                if self.env.now >= end:
                    return False
                self.env.run(until=min(end, self.env.now + check_every))
        return True

    # --- building ------------------------------------------------------------------------

    def address_of(self, member_id: str) -> str:
        """The simulated listen address of a member."""
        return ADDRESS_PREFIX + member_id

    def set_link(self, a: str, b: str, model: LinkModel) -> None:
        """Use ``model`` for connections between ``a`` and ``b`` opened from now on."""
        self._links[frozenset((a, b))] = model

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
        report = FaultReport(kind, self.env.now, target)
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
        self.heal(record=False)
        self._groups = {m: i for i, group in enumerate(groups) for m in group}
        self._one_way = one_way
        name = " | ".join(",".join(sorted(g)) for g in (list(g) for g in groups))
        self._partition = self._report("partition_one_way" if one_way else "partition", name)
        return self._partition

    def heal(self, *, record: bool = True) -> FaultReport | None:
        """End the partition; held bytes continue on their way."""
        report = self._report("heal", "all") if record else None
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
                    self._transmit(pipe, item)
                else:
                    self._signal(pipe, item)
        return report

    def crash(self, member_id: str) -> FaultReport:
        """Kill a member's process: the OS resets its connections; its state is lost."""
        transport = self._kill(member_id)
        report = self._report("crash", member_id)
        report.members_affected.add(member_id)
        for end in transport.ends:  # in the order they were made
            report.conns_cut += 1
            report.members_affected.add(end.out.dst)
            end.closed = True
            self._signal(end.out, RST)
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

    # --- the wire ------------------------------------------------------------------------

    def _blocker(self, src: str, dst: str) -> FaultReport | None:
        cut = self._cuts.get(frozenset((src, dst)))
        if cut is not None:
            return cut
        if self._partition is not None:
            gs, gd = self._groups.get(src), self._groups.get(dst)
            if gs is not None and gd is not None and gs != gd and (not self._one_way or gs == 0):
                return self._partition
        return None

    def _connect(self, dialer: SimTransport, address: str) -> None:
        target = address[len(ADDRESS_PREFIX) :] if address.startswith(ADDRESS_PREFIX) else None
        src = dialer.host
        model = self.link_model(src, target or "")
        latency = model.one_way(self.rng)

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
        now = self.env.now
        forward = Pipe(dialer.host, acceptor.host, model, busy_until=now, last_arrival=now)
        backward = Pipe(
            acceptor.host, dialer.host, model, busy_until=now, last_arrival=now + latency
        )
        a = SimEnd(dialer, forward)
        b = SimEnd(acceptor, backward)
        forward.end, backward.end = b, a
        dialer.ends[a] = None
        acceptor.ends[b] = None

        def dialer_connected() -> None:
            if a in dialer.ends:
                dialer.dispatch(lambda: dialer.handler.connection_made(a, True, address))

        self.schedule(latency, dialer_connected)
        acceptor.dispatch(lambda: acceptor.handler.connection_made(b, False, dialer.listen_address))

    def _transmit(self, pipe: Pipe, data: bytes) -> None:
        """Put bytes written on a connection into its pipe: queued behind the bytes before them
        (bandwidth), then carried for the link's one-way delay, arriving in order."""
        # most frames travel while no fault is active: no lookup (and no call) for them
        if pipe.dead or ((self._cuts or self._partition is not None) and self._held(pipe, data)):
            return
        model = pipe.model
        env = self.env
        now = env._now  # see "clock" above
        busy = pipe.busy_until
        busy = (now if now > busy else busy) + len(data) * model.seconds_per_byte
        pipe.busy_until = busy
        if model.varies:
            rng = self.rng
            arrival = busy + model.one_way(rng) + model.retransmit_delay(len(data), rng)
        else:
            arrival = busy + model.latency
        previous = pipe.last_arrival
        if arrival < previous:
            arrival = previous
        pipe.last_arrival = arrival
        if self.chunking:
            if not self._rechunked(pipe, data, arrival, arrival == previous):
                self._push(pipe, data, arrival, self._arrival_callbacks)
            return
        # _push, inline for the common case: one chunk per write, none merged into (no pipe.last)
        event = Arrival()
        event.callbacks = self._arrival_callbacks
        event.item = data
        event.pipe = pipe
        heappush(env._queue, (arrival, NORMAL, next(env._eid), event))

    def _signal(self, pipe: Pipe, signal: str) -> None:
        """Send FIN or RST down ``pipe``, after every byte already in it."""
        if pipe.dead or ((self._cuts or self._partition is not None) and self._held(pipe, signal)):
            return
        arrival = max(self.env._now + pipe.model.one_way(self.rng), pipe.last_arrival)
        pipe.last_arrival = arrival
        self._push(pipe, signal, arrival, self._signal_callbacks)

    def _push(self, pipe: Pipe, item: bytes | str, arrival: float, callbacks: list) -> None:
        """Schedule ``item``'s arrival at the far end of ``pipe`` at simulated time ``arrival``."""
        event = Arrival()
        event.callbacks = callbacks
        event.item = item
        event.pipe = pipe
        pipe.last = event
        env = self.env
        # what env.schedule(event, NORMAL, delay) does, without its call; see "clock" above
        heappush(env._queue, (arrival, NORMAL, next(env._eid), event))

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
