"""The Member: one peer of the overlay, as a sans-IO state machine.

A member never touches a socket, a clock or a simulator. It is driven by the
:class:`~peerlab.transport.ConnectionHandler` callbacks of the transport it was given and acts only
through that transport. The same code therefore runs over real TCP and inside a simulation.

What it does: a Hello handshake on every connection; the whole link-state database sent right
after the handshake; adverts flooded in batches per neighbour, with fight-back when the network
holds a newer version of our own advert; lazy, throttled BFS route recomputation; hop-by-hop
relay of Data with TTL and a recorded path, routed messages for one neighbour batched into one
frame while a read is handled; reliable delivery with end-to-end acks (:mod:`peerlab.reliable`);
keepalive with a dead-peer timeout; graceful leave.

Every life of a member has an *incarnation* no earlier life had (given by whoever starts it: a
network's counter, or ``peerlab member``'s wall clock). It orders the member's adverts before
their sequence numbers and is part of every message id, so nothing a restarted member says is
mistaken for what an earlier life said.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from peerlab import trace as ev
from peerlab.errors import (
    ConfigError,
    HandshakeError,
    HandshakeTimeout,
    LocalProtocolError,
    PeerlabError,
    ProtocolError,
    RemoteProtocolError,
    TooSlow,
    TruncatedFrame,
    UnknownMember,
    name_list,
)
from peerlab.guard import (
    HANDSHAKE_TIMEOUT,
    HOARDING,
    NAME_REFILL,
    PROTOCOL_ERROR,
    SLOW_FRAME,
    Guard,
    NameBudget,
    Standing,
    host_of,
)
from peerlab.identity import Certificate, Identity
from peerlab.linkstate import (
    RESERVED,
    AdvertCache,
    AdvertRecord,
    EdgeChange,
    LinkStateDB,
    Verdict,
    key,
    successor,
)
from peerlab.reliable import WINDOW_MAX, Pending, Receipt, ReliableDelivery
from peerlab.routing import Route, shortest_path_tree
from peerlab.secure import NONCE_SIZE, Security
from peerlab.trace import DELIVER, FORWARD, SEND, Tracer
from peerlab.transport import Conn, TimerHandle, Transport
from peerlab.wire import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    KIND,
    MAX_TTL,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Ack,
    Adverts,
    Batch,
    Bye,
    Data,
    FrameDecoder,
    Hello,
    Message,
    Ping,
    Pong,
    Proof,
    encode_body,
    frame_header,
    frame_too_large,
    member_id_problem,
    message_kind,
)

#: Destinations whose first-hop connection a member remembers at most: enough for a relay's
#: working set, small enough that thousands of members do not each hold a table as big as the
#: network (which is why routes are otherwise read off the BFS tree on demand).
VIA_CACHE_SIZE = 256

M = TypeVar("M")

#: Drop reasons a member reports in ``drop`` trace events.
NO_ROUTE = "no_route"
TTL_EXPIRED = "ttl_expired"
LOOP = "loop"  # a relay found itself on the message's path already
NO_ACK = "no_ack"  # a reliable message's deadline passed without an acknowledgement
NOT_RUNNING = "not_running"
#: How a disconnect's reason starts when the peer said Bye.
PEER_LEFT = "peer left"
#: How the reason of a close for a protocol error starts (and of the Bye said before it).
PROTOCOL_ERROR_REASON = "protocol error: "
#: The longest reason a member puts in a Bye (an error's text may quote the peer's input).
MAX_BYE_REASON = 512
SENDER_STOPPED = "sender_stopped"  # a reliable message its sender stopped before settling
REFUSED = "refused"  # a reliable message beyond its window, or from a sender life no longer kept
TOO_LARGE = "too_large"  # a relay's own id on the path made the frame exceed the maximum
BAD_SIGNATURE = "bad_signature"  # secure mode: a code that does not prove the source sent it

#: Misbehaviour points of the protocol errors that are not plain malformed input.
POINTS: dict[type, float] = {HandshakeTimeout: HANDSHAKE_TIMEOUT, TooSlow: SLOW_FRAME}
#: Connections of each kind protected from eviction (the longest-lived, the busiest first hops).
PROTECT = 4
#: How long an address that answered as another member than an advert said is not dialled on
#: an advert's word (seconds).
UNVERIFIED_FOR = 600.0
#: How long an address where a dial on an advert's word met no member is not dialled on an
#: advert's word again (seconds).
UNANSWERED_FOR = 60.0

#: Bytes a Data frame can take beyond its payload (ids are at most 128 characters): a payload
#: within this of the maximum frame size is checked by encoding it when it is sent.
DATA_OVERHEAD = 4096


@dataclass(frozen=True)
class MemberConfig:
    """Tunables of a member; the defaults suit both loopback and simulated networks."""

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_connections: int = 256
    handshake_timeout: float = 5.0
    keepalive_interval: float = 1.0
    dead_timeout: float = 3.5
    flood_delay: float = 0.02
    route_delay: float = 0.01
    route_hold: float = 0.05
    default_ttl: int = 64
    max_age: float = 60.0
    max_entries: int = 100_000
    max_neighbours: int = 1024
    target_degree: int = 0
    ack_timeout: float = 1.0
    reliable_deadline: float = 10.0
    reliable_window: int = 256
    # what a remote peer may make us hold (see peerlab/guard.py and docs/protocol.md)
    handshake_frame_size: int = 16 << 10  # the largest frame before a Hello
    max_pending_handshakes: int = 64
    max_pending_per_address: int = 8
    max_connections_per_address: int = 32
    max_buffered: int = 64 << 20  # bytes of unfinished frames, all connections together
    min_frame_rate: float = 1024.0  # bytes/s a frame under way must average...
    frame_grace: float = 2.0  # ...once it has been under way this long
    max_claims: int = 100_000  # neighbours listed by all the adverts a database holds
    max_claims_per_peer: int = 50_000  # ...by the adverts of the members one peer introduced
    max_origins_per_peer: int = 25_000  # members one peer may introduce (and new ids it names)
    discourage_score: float = 100.0  # misbehaviour that gets an address refused...
    discourage_time: float = 600.0  # ...for this long

    def __post_init__(self) -> None:
        positive = ("handshake_timeout", "keepalive_interval", "dead_timeout", "ack_timeout")
        for name in (*positive, "reliable_deadline"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be > 0, got {getattr(self, name)!r}")
        if not 1 <= self.reliable_window <= WINDOW_MAX:
            raise ConfigError(
                "reliable_window", f"must be in 1..{WINDOW_MAX}, got {self.reliable_window}"
            )
        if self.dead_timeout <= self.keepalive_interval:
            raise ConfigError(
                "dead_timeout",
                f"must exceed keepalive_interval ({self.keepalive_interval!r}), "
                f"got {self.dead_timeout!r}",
            )
        if not 1 <= self.default_ttl <= MAX_TTL:
            raise ConfigError("default_ttl", f"must be in 1..{MAX_TTL}, got {self.default_ttl}")


@dataclass(slots=True)
class _Conn:
    handle: Conn
    outbound: bool
    remote_address: str
    decoder: FrameDecoder
    last_heard: float
    peer: str | None = None
    peer_address: str = ""
    peer_incarnation: int = 0
    address: str = ""  # the remote machine, for the books (host_of(remote_address))
    opened: float = 0.0
    buffered: int = 0  # bytes of an unfinished frame
    frame_since: float = 0.0  # when that frame began
    ours: Hello | None = None  # the Hellos: the secure handshake's transcript
    theirs: Hello | None = None
    cert: Certificate | None = None  # secure mode: the peer's, once its Hello is checked
    hello_timer: TimerHandle | None = None
    pinged: bool = False  # the peer sent a Ping since our last keepalive tick
    open: bool = True  # still in the member's connections (cheaper to test than a lookup)
    queued: list[Data | Ack] | None = None  # routed messages waiting for the batch to end
    names: NameBudget | None = None  # new member ids the peer may still name, once established
    ping_out: tuple[int, float] | None = None  # our last Ping's nonce and when it left
    round_trip: float | None = None  # the shortest Ping to Pong seen on this connection


class _Timers:
    """A member's own timers: the pending flood, the pending route computation, the tick."""

    __slots__ = ("flush", "route", "tick")

    def __init__(self) -> None:
        self.flush: TimerHandle | None = None
        self.route: TimerHandle | None = None
        self.tick: TimerHandle | None = None

    def cancel(self) -> None:
        """Cancel all three."""
        for timer in (self.flush, self.route, self.tick):
            if timer is not None:
                timer.cancel()
        self.flush = self.route = self.tick = None


class Tally:
    """Frames and bytes sent of one message kind."""

    __slots__ = ("bytes", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0


class Counters:
    """Frames and bytes this member sent, by message kind, and its route computations."""

    def __init__(self) -> None:
        self.route_computations = 0
        # by message class: two slot attributes bumped in place are the cheapest tally for
        # something done once per frame sent
        self.tallies: dict[type, Tally] = {cls: Tally() for cls in MESSAGE_TYPES}

    @property
    def frames_sent(self) -> dict[str, int]:
        """Frames sent, by message kind (kinds never sent are left out)."""
        return {KIND[cls]: t.frames for cls, t in self.tallies.items() if t.frames}

    @property
    def bytes_sent(self) -> dict[str, int]:
        """Bytes sent, frame headers included, by message kind (kinds never sent are left out)."""
        return {KIND[cls]: t.bytes for cls, t in self.tallies.items() if t.frames}


class Member:
    """One peer: handshakes, keeps the link-state database, routes and relays messages."""

    def __init__(
        self,
        member_id: str,
        transport: Transport,
        *,
        config: MemberConfig | None = None,
        rng: random.Random | None = None,
        tracer: Tracer | None = None,
        cache: AdvertCache | None = None,
        on_deliver: Callable[[Data], None] | None = None,
        incarnation: int = 0,
        identity: Identity | None = None,
    ) -> None:
        problem = member_id_problem(member_id)
        if problem is not None:
            raise ValueError(problem)
        self.id = member_id
        self.incarnation = incarnation
        self.transport = transport
        self.config = config if config is not None else MemberConfig()
        self.rng = rng if rng is not None else random.Random(member_id)
        self.tracer = tracer if tracer is not None else Tracer(keep=False)
        self.on_deliver = on_deliver
        #: secure mode (None: open mode, anyone may join)
        self._security = Security(identity) if identity is not None else None
        self.db = LinkStateDB(
            member_id,
            transport.listen_address,
            incarnation=incarnation,
            max_entries=self.config.max_entries,
            max_neighbours=self.config.max_neighbours,
            max_claims=self.config.max_claims,
            max_claims_per_peer=self.config.max_claims_per_peer,
            max_origins_per_peer=self.config.max_origins_per_peer,
            cache=cache if cache is not None else AdvertCache(trust=identity and identity.trust),
            sign=self._security.sign_advert if self._security is not None else None,
        )
        self.db.on_renumber = self._recompute
        self.counters = Counters()
        self._tallies = self.counters.tallies  # read for every frame sent
        self._max_frame_size = self.config.max_frame_size
        self.running = False
        self._conns: dict[Conn, _Conn] = {}
        self._peers: dict[str, _Conn] = {}
        self._via: dict[str, _Conn] = {}  # destination -> connection to its first hop
        self._connecting: set[str] = set()
        self._outbox: dict[str, dict[str, msgspec.Raw]] = {}
        self._timers = _Timers()
        self._last_route_at = float("-inf")
        db = self.db
        self._tree = shortest_path_tree(db.claimed, db.me, db.index.ids, db.listed)
        self._unreachable_since: dict[str, float] = {}
        self._msg_counter = 0
        self._ping_nonce = 0
        self._reliable = ReliableDelivery(incarnation, self.config.reliable_window)
        self._guard = Guard(
            Standing(
                threshold=self.config.discourage_score,
                half_life=self.config.discourage_time / 10,
                ban=self.config.discourage_time,
            )
        )
        self._batching = 0  # depth of batch() blocks (and multi-message reads) under way
        self._queued: list[_Conn] = []  # connections with routed messages queued, in order

    @classmethod
    def incarnate(
        cls,
        member_id: str,
        transport: Transport,
        *,
        seed: int,
        incarnation: int,
        config: MemberConfig,
        tracer: Tracer,
        cache: AdvertCache,
        deliver: Callable[[str, Data], None] | None = None,
        identity: Identity | None = None,
    ) -> Member:
        """A member as a network creates it: in its ``incarnation``, its randomness seeded by
        (network seed, id, incarnation), so a restarted member draws differently from its
        earlier life, and deliveries reported to ``deliver(member_id, data)``."""
        return cls(
            member_id,
            transport,
            config=config,
            rng=random.Random(f"{seed}:{member_id}:{incarnation}"),
            tracer=tracer,
            cache=cache,
            on_deliver=(lambda data: deliver(member_id, data)) if deliver else None,
            incarnation=incarnation,
            identity=identity,
        )

    # --- public API ----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Member {self.id} peers={sorted(self._peers)} routes={self._tree.reachable}>"

    @property
    def neighbours(self) -> list[str]:
        """Ids of the members we have an established connection with, sorted."""
        return sorted(self._peers)

    @property
    def routes(self) -> dict[str, Route]:
        """The current next-hop table ``{destination: Route(next_hop, hops)}``.

        Built from the BFS tree on each call and not kept: a member of a large network would
        otherwise hold a table as big as the network for as long as its routes stay the same.
        """
        return self._tree.routes(self.db.index.ids)

    @property
    def reachable(self) -> int:
        """How many destinations the current table reaches (cheaper than ``len(routes)``)."""
        return self._tree.reachable

    def routing_table(self) -> dict[str, dict[str, str | int]]:
        """The next-hop table as plain JSON-ready dicts, sorted by destination."""
        routes = sorted(self.routes.items())
        return {d: {"next_hop": r.next_hop, "hops": r.hops} for d, r in routes}

    def peer_addresses(self) -> set[str]:
        """Addresses of established neighbours: the ones we dialled, and the ones they announce
        where we once dialled and found that very member (a Hello may claim any address)."""
        answered = self._guard.answered
        out = set()
        for c in self._peers.values():
            if c.outbound:
                out.add(c.remote_address)
            if answered.get(c.peer_address) == c.peer:
                out.add(c.peer_address)
        return out

    def round_trips(self) -> dict[str, float]:
        """By established neighbour: the shortest time a Ping of ours took to come back as a
        Pong on its connection (seconds), where one has."""
        return {
            peer: c.round_trip
            for peer, c in sorted(self._peers.items())
            if c.round_trip is not None
        }

    def standing(self) -> dict[str, dict[str, float]]:
        """By remote address: its misbehaviour ``score``, for how long it is ``refused_for``,
        and its ``connections`` and ``pending`` handshakes now."""
        guard, now = self._guard, self.transport.now()
        report = guard.standing.report(now)
        for address in {*guard.established, *guard.pending}:
            report.setdefault(address, {"score": 0.0, "refused_for": 0.0})
        for address, row in report.items():
            row["connections"] = guard.established[address]
            row["pending"] = guard.pending[address]
        return dict(sorted(report.items()))

    def view(self) -> set[tuple[str, str]]:
        """The two-way links this member believes exist, as sorted pairs."""
        return self.db.edges()

    @property
    def routes_pending(self) -> bool:
        """True while a route recomputation is scheduled but has not run yet."""
        return self._timers.route is not None

    def start(self, join: list[str] | tuple[str, ...] = ()) -> None:
        """Begin operating: start the keepalive clock and dial the ``join`` addresses."""
        if self.running:
            return
        self.running = True
        self._emit(ev.START, address=self.transport.listen_address)
        self._timers.tick = self.transport.call_later(self.config.keepalive_interval, self._tick)
        for address in join:
            self.connect(address)

    def connect(self, address: str) -> None:
        """Dial ``address`` (no-op if a dial to it is already under way)."""
        if not self.running or address in self._connecting:
            return
        self._connecting.add(address)
        self.transport.connect(address)

    def disconnect(
        self, peer: str, reason: str = "disconnected locally", *, bye: bool = False
    ) -> bool:
        """Close the connection to neighbour ``peer``, with ``bye`` saying Bye first (so that
        it does not dial us again); False if there was no such neighbour."""
        c = self._peers.get(peer)
        if c is None:
            return False
        if bye:
            self._send_msg(c, Bye(reason))
        self._close(c, reason)
        return True

    def send(self, dst: str, payload: bytes = b"", *, reliable: bool = False) -> str:
        """Send ``payload`` to member ``dst``; returns the message id, ``id:incarnation:n``,
        unique across members and their lives, that trace events name it by.

        A reliable message (see :mod:`peerlab.reliable`) ends in an ``acked`` trace event, or a
        ``drop`` with reason ``no_ack`` when ``reliable_deadline`` passes first.
        """
        self._msg_counter += 1
        msg_id = f"{self.id}:{self.incarnation}:{self._msg_counter}"
        data = Data(msg_id, self.id, dst, self.config.default_ttl, [self.id], payload)
        if SEND in self.tracer.kinds:
            self._emit(
                ev.SEND, msg_id=msg_id, src=self.id, dst=dst, size=len(payload), reliable=reliable
            )
        if not self.running:
            self._drop(data, NOT_RUNNING)
            return msg_id
        if dst == self.id:
            self._deliver(data)
            if reliable:
                self._emit(ev.ACKED, msg_id=msg_id, attempts=0)
            return msg_id
        limit = self._max_frame_size
        if len(payload) > limit - DATA_OVERHEAD:
            # found now, while the caller can hear of it, not when a batch ends
            size = len(encode_body(data))
            if size > limit:
                raise frame_too_large(data, size, limit)
        if reliable:
            sender = self._reliable.sender
            pending = sender.open(data, dst, self.transport.now() + self.config.reliable_deadline)
            if sender.in_window(pending):
                self._attempt(pending)
            self._arm(pending)
        else:
            if self._security is not None:
                self._seal(data)
            self._forward(data)
        return msg_id

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block, routed messages for one neighbour wait and leave together in one
        frame when the block ends (a bulk sender's loop of :meth:`send` calls shares frames,
        writes and reads). A member batches on its own what it relays from one read."""
        self._batching += 1
        try:
            yield
        finally:
            self._end_batch()

    def leave(self, reason: str = "leaving") -> None:
        """Leave gracefully: advertise no neighbours, say Bye to every peer, close everything."""
        if not self.running:
            return
        self._emit(ev.LEAVE, reason=reason)
        self._originate(neighbours=())
        for peer in sorted(self._peers):
            c = self._peers[peer]
            batch = self._outbox.pop(peer, {})
            batch[self.id] = self.db.own.raw
            self._send_msg(c, Adverts(list(batch.values())))
            self._send_msg(c, Bye(reason))
        self.stop()

    def stop(self) -> None:
        """Stop at once: close every connection, cancel every timer (no goodbye)."""
        if not self.running:
            return
        self.running = False
        for c in list(self._conns.values()):
            self._discard(c)
            if c.hello_timer is not None:
                c.hello_timer.cancel()
            self.transport.close(c.handle)
        self._peers.clear()
        self._outbox.clear()
        self._queued.clear()
        self._timers.cancel()
        for pending in self._reliable.sender:
            if pending.timer is not None:
                pending.timer.cancel()
            self._drop(pending.data, SENDER_STOPPED)
        self._reliable = ReliableDelivery(self.incarnation, self.config.reliable_window)
        self._emit(ev.STOP)

    # --- transport callbacks -------------------------------------------------------------

    def connection_made(self, conn: Conn, outbound: bool, remote_address: str) -> None:
        """Transport callback: a connection opened; start the handshake on it."""
        if outbound:
            self._connecting.discard(remote_address)
        if not self.running:
            self.transport.close(conn)
            return
        now = self.transport.now()
        address = host_of(remote_address)
        refusal = self._make_room(address, outbound, now)
        if refusal:
            self._emit(ev.DISCONNECT, peer=None, address=remote_address, reason=refusal)
            self.transport.close(conn)
            return
        decoder = FrameDecoder(self.config.max_frame_size, self.config.handshake_frame_size)
        c = _Conn(conn, outbound, remote_address, decoder, now, address=address, opened=now)
        self._conns[conn] = c
        self._guard.pending[address] += 1
        c.hello_timer = self.transport.call_later(
            self.config.handshake_timeout, lambda: self._handshake_expired(conn)
        )
        address = self.transport.listen_address
        security = self._security
        if security is None:
            hello = Hello(self.id, address, PROTOCOL_VERSION, self.incarnation)
        else:
            certificate, nonce = security.identity.certificate, security.nonce(NONCE_SIZE)
            hello = Hello(self.id, address, PROTOCOL_VERSION, self.incarnation, certificate, nonce)
        c.ours = hello
        self._send_msg(c, hello)

    def data_received(self, conn: Conn, data: bytes) -> None:
        """Transport callback: bytes arrived; decode and handle whole messages."""
        c = self._conns.get(conn)
        if c is None:
            return
        c.last_heard = self.transport.now()
        try:
            message = c.decoder.whole(data)
            if message is None:  # not one whole frame: none, part of one, or several
                messages = c.decoder.feed(data)
                if c.decoder.buffered != c.buffered or (c.buffered and messages):
                    self._unfinished(c, bool(messages))
                if len(messages) != 1:
                    if messages and c.open:
                        self._receive_batch(c, messages)
                    return
                if not c.open:  # it was the one holding most unfinished bytes
                    return
                message = messages[0]  # the end of a frame split between reads
            if type(message) is Data and c.peer is not None:
                self._on_data(c, message)  # most of the traffic: spare it the dispatch
            else:
                self._handle(c, message)
        except ProtocolError as exc:
            if c.open:
                self._protocol_error(c, exc)

    def connection_lost(self, conn: Conn, reason: str) -> None:
        """Transport callback: the peer closed or the connection broke."""
        c = self._conns.get(conn)
        if c is None:
            return
        try:
            c.decoder.eof()
        except TruncatedFrame as exc:
            self._emit(
                ev.PROTOCOL_ERROR,
                peer=c.peer,
                address=c.remote_address,
                error=type(exc).__name__,
                detail=str(exc),
            )
        self._forget(c, reason)

    def connect_failed(self, address: str, reason: str) -> None:
        """Transport callback: a dial did not produce a connection."""
        self._connecting.discard(address)
        self._emit(ev.CONNECT_FAILED, address=address, reason=reason)
        self._met_nobody(address)

    # --- messages ------------------------------------------------------------------------

    def _handle(self, c: _Conn, message: Message) -> None:
        """Act on one message; Data on an established connection goes to ``_on_data`` directly."""
        if c.peer is None:
            if type(message) is Hello and c.theirs is None:
                self._on_hello(c, message)
            elif type(message) is Proof and c.theirs is not None:
                self._on_proof(c, message)
            elif type(message) is Bye:  # refused by the peer, which says why
                self._close(c, f"{PEER_LEFT}: {message.reason}")
            else:
                expected = "Hello" if c.theirs is None else "Proof"
                raise HandshakeError(f"received {message_kind(message)} before {expected}")
            return
        match message:
            case Batch(messages):
                self._receive_batch(c, messages)
            case Adverts():
                self._on_adverts(c, message)
            case Ack():
                self._on_routed_ack(message)
            case Ping(nonce):
                c.pinged = True
                self._send_msg(c, Pong(nonce))
            case Pong(nonce):
                if c.ping_out is not None and c.ping_out[0] == nonce:
                    took = self.transport.now() - c.ping_out[1]
                    c.round_trip = took if c.round_trip is None else min(c.round_trip, took)
                    c.ping_out = None
            case Bye(reason):
                self._close(c, f"{PEER_LEFT}: {reason}")
            case Hello() | Proof():
                raise RemoteProtocolError(f"{message_kind(message)} on an established connection")

    def _on_hello(self, c: _Conn, hello: Hello) -> None:
        if hello.protocol_version != PROTOCOL_VERSION:
            raise HandshakeError(
                f"protocol version {hello.protocol_version} not supported "
                f"(this member speaks {PROTOCOL_VERSION})"
            )
        if hello.member_id == self.id:
            raise HandshakeError(f"peer claims our own id {self.id!r}")
        security = self._security
        if security is None:
            self._established(c, hello)
            return
        # secure mode: a certificate the network vouches for, then proof of its key
        c.cert = security.check_hello(hello)
        c.theirs = hello
        dialer, acceptor = (c.ours, hello) if c.outbound else (hello, c.ours)
        self._send_msg(c, Proof(security.prove(dialer, acceptor, b"D" if c.outbound else b"A")))

    def _on_proof(self, c: _Conn, proof: Proof) -> None:
        hello = c.theirs
        assert self._security is not None and hello is not None and c.cert is not None
        dialer, acceptor = (c.ours, hello) if c.outbound else (hello, c.ours)
        role = b"A" if c.outbound else b"D"  # the peer's
        self._security.check_proof(c.cert, proof.signature, dialer, acceptor, role)
        self._established(c, hello)

    def _established(self, c: _Conn, hello: Hello) -> None:
        """The handshake is done: ``c`` is a connection to the member of ``hello``."""
        guard = self._guard
        if c.outbound:
            expected = guard.expected.pop(c.remote_address, None)
            if expected is not None and expected != hello.member_id:
                self._emit(ev.DIAL_REFUSED, address=c.remote_address, expected=expected)
                guard.unverified[c.remote_address] = self.transport.now() + UNVERIFIED_FOR
                self._close(c, f"answered as {hello.member_id!r} where {expected!r} was said to be")
                return
            guard.answered[c.remote_address] = hello.member_id
        if guard.established[c.address] >= self.config.max_connections_per_address:
            limit = self.config.max_connections_per_address
            self._close(c, f"{limit} connections from {c.address} already")
            return
        if c.hello_timer is not None:
            c.hello_timer.cancel()
            c.hello_timer = None
        guard.pending[c.address] -= 1
        guard.established[c.address] += 1
        c.decoder.limit = self.config.max_frame_size
        c.peer = hello.member_id
        c.peer_address = hello.listen_address
        c.peer_incarnation = hello.incarnation
        # twice the origins a peer may introduce: an honest peer names few ids that are not
        # origins too, so the origin quota (which only refuses adverts) acts first
        c.names = NameBudget(
            c.peer, 2 * self.config.max_origins_per_peer, NAME_REFILL, self.transport.now()
        )
        existing = self._peers.get(c.peer)
        if existing is not None:
            keep = self._preferred(existing, c)
            drop = c if keep is existing else existing
            self._peers[c.peer] = keep
            self._discard(drop)
            self.transport.close(drop.handle)
            self._emit(
                ev.DISCONNECT,
                peer=c.peer,
                address=drop.remote_address,
                reason="duplicate connection",
            )
            if keep is existing:
                return
        else:
            self._peers[c.peer] = c
        self._emit(ev.CONNECT, peer=c.peer, address=c.remote_address, outbound=c.outbound)
        batch = self._outbox.setdefault(c.peer, {})
        for record in self.db.records():
            batch[record.advert.origin] = record.raw
        if existing is None:
            self._originate(self._peers)
        self._schedule_flush()

    def _preferred(self, a: _Conn, b: _Conn) -> _Conn:
        """Of two connections to one peer, the one both ends keep: the one to the peer's later
        life (its earlier life is gone), else the one opened by the smaller id."""
        if a.peer_incarnation != b.peer_incarnation:
            return a if a.peer_incarnation > b.peer_incarnation else b
        peer = b.peer
        assert peer is not None
        smaller = min(self.id, peer)

        def opener(c: _Conn) -> str:
            return self.id if c.outbound else peer

        if opener(a) != opener(b):
            return a if opener(a) == smaller else b
        return b  # same opener: the newer one replaces a connection that is likely dead

    def _on_adverts(self, c: _Conn, batch: Adverts) -> None:
        sender = c.peer
        assert sender is not None
        # decode the whole batch first: a bad advert rejects it before anything is installed
        budget = c.names
        assert budget is not None
        budget.refill(self.transport.now())
        absorbed = self.db.absorb(self.db.cache.decode_all(batch.adverts, budget), sender)
        if absorbed.fresh:
            # read now, before a fight-back below replaces our own advert (the changes are only
            # worked out if no recompute is due already)
            self._apply_changes(self.db.edge_changes(absorbed.fresh, absorbed.replaced))
        for record, outcome in absorbed.others:
            verdict = outcome.verdict
            origin = record.advert.origin
            if verdict is Verdict.OLD:
                ours = self.db.held(record.origin)
                assert ours is not None
                self._outbox.setdefault(sender, {})[origin] = ours.raw
            elif verdict is Verdict.SELF_NEWER or verdict is Verdict.SELF_FLUSHED:
                self._fight_back(record)
            elif verdict is Verdict.REJECTED:
                self._emit(ev.ADVERT_REJECTED, peer=sender, origin=origin, reason=outcome.reason)
        if absorbed.known:
            # the sender holds these already: do not flood them back to it
            box = self._outbox.get(sender)
            if box:
                for record in absorbed.known:
                    if box.get(record.advert.origin) is record.raw:
                        del box[record.advert.origin]
        fresh = {record.advert.origin: record.raw for record in absorbed.fresh}
        if fresh:
            unreachable = self._unreachable_since
            if unreachable:
                for origin in fresh:
                    unreachable.pop(origin, None)
            outbox = self._outbox
            for peer in self._peers:
                if peer != sender:
                    box = outbox.get(peer)
                    if box is None:
                        outbox[peer] = dict(fresh)
                    else:
                        box.update(fresh)
        if ev.ADVERT_IN in self.tracer.kinds:
            self._emit(ev.ADVERT_IN, peer=sender, count=len(batch.adverts), new=len(fresh))
        if self._outbox:
            self._schedule_flush()

    def _on_data(self, c: _Conn, data: Data) -> None:
        path = data.path
        if self.id in path:  # a loop, while tables disagree: drop it now, not at TTL's end
            self._drop(data, LOOP)
            return
        # ``data`` was decoded for this member alone: it is updated in place, not copied
        path.append(self.id)
        if data.dst == self.id:
            self._deliver(data)
            return
        if data.ttl <= 1:
            self._drop(data, TTL_EXPIRED)
            return
        data.ttl -= 1
        if FORWARD in self.tracer.kinds:
            self._emit(ev.FORWARD, msg_id=data.msg_id, src=data.src, dst=data.dst, came_from=c.peer)
        try:
            # _forward's common case inline (a known first hop, no batch open): a call less a hop
            out = self._via.get(data.dst)
            if out is None or self._batching:
                self._forward(data)
            else:
                self._send_frame(out, data)
        except LocalProtocolError:
            # our fault, not the sender's: its frame was legal, so its connection stays
            self._drop(data, TOO_LARGE)

    def _receive_batch(self, c: _Conn, messages: list[Message]) -> None:
        """Handle several messages from ``c`` in order; what they make this member send to one
        neighbour leaves in one frame at the end."""
        self._batching += 1
        try:
            on_data = self._on_data
            for message in messages:
                if not c.open:  # a message handled before this one closed the connection
                    break
                if type(message) is Data and c.peer is not None:
                    on_data(c, message)
                else:
                    self._handle(c, message)
        finally:
            self._end_batch()

    def _on_routed_ack(self, ack: Ack) -> None:
        if ack.dst == self.id:
            self._on_ack(ack)
        elif ack.ttl <= 1:
            self._drop(ack, TTL_EXPIRED)
        else:
            self._forward(msgspec.structs.replace(ack, ttl=ack.ttl - 1))

    # --- data ----------------------------------------------------------------------------

    def _forward(self, message: Data | Ack) -> None:
        """Send a message not addressed to us on towards its destination, or drop it."""
        c = self._first_hop(message.dst)
        if c is None:
            self._drop(message, NO_ROUTE)
            return
        if self._batching:
            queued = c.queued
            if queued is None:
                c.queued = [message]
                self._queued.append(c)
            else:
                queued.append(message)
        else:
            self._send_frame(c, message)  # nothing is queued outside a batch

    def _end_batch(self) -> None:
        """Leave one level of batching; at the outermost, send what was queued."""
        self._batching -= 1
        if not self._batching:
            queued, self._queued = self._queued, []
            for c in queued:
                if c.queued is not None and c.open:
                    self._send_queued(c)

    def _send_queued(self, c: _Conn) -> None:
        messages, c.queued = c.queued, None
        self._send_routed(c, messages)

    def _send_routed(self, c: _Conn, messages: list[Data | Ack]) -> None:
        """Send routed messages to ``c``: one alone in its own frame, more in one Batch frame,
        halved until each part fits; one that cannot fit is dropped (as a relay drops it)."""
        try:
            self._send_frame(c, messages[0] if len(messages) == 1 else Batch(messages))
        except LocalProtocolError:
            if len(messages) == 1:
                self._drop(messages[0], TOO_LARGE)
            else:
                half = len(messages) // 2
                self._send_routed(c, messages[:half])
                self._send_routed(c, messages[half:])

    def _first_hop(self, dst: str) -> _Conn | None:
        """The connection to the first hop towards ``dst``, if there is one."""
        c = self._via.get(dst)
        return c if c is not None else self._next_conn(dst)

    def _next_conn(self, dst: str) -> _Conn | None:
        """:meth:`_first_hop` read off the BFS tree, and remembered until the routes change or
        a connection closes (a relay looks up the same few destinations again and again)."""
        index = self.db.index
        number = index.get(dst)
        first = self._tree.first_hop
        hop = first[number] if number is not None and number < len(first) else -1
        c = self._peers.get(index.ids[hop]) if hop >= 0 else None
        if c is not None:
            if len(self._via) >= VIA_CACHE_SIZE:
                self._via.clear()
            self._via[dst] = c
        return c

    def _deliver(self, data: Data) -> None:
        security = self._security
        if security is not None and data.src != self.id:
            certificate = self._certificate(data.src)
            if not certificate or not security.data_is_from(data, certificate):
                self._drop(data, BAD_SIGNATURE)
                return
        meta = data.reliable
        if meta is not None:
            receipt = self._reliable.receiver.receive(data.src, meta)
            if receipt is Receipt.NEW or receipt is Receipt.DUPLICATE:
                ack = Ack(data.msg_id, self.id, data.src, self.config.default_ttl)
                if security is not None:
                    ack = security.seal_ack(ack, certificate)
                self._forward(ack)
            if receipt is not Receipt.NEW:
                if receipt is Receipt.REFUSED:
                    self._drop(data, REFUSED)
                return
        if DELIVER in self.tracer.kinds:
            self._emit(
                ev.DELIVER,
                msg_id=data.msg_id,
                src=data.src,
                dst=data.dst,
                path=data.path,
                hops=len(data.path) - 1,
                size=len(data.payload),
            )
        if self.on_deliver is not None:
            self.on_deliver(data)

    def _drop(self, message: Data | Ack, reason: str) -> None:
        if isinstance(message, Data):
            self._emit(
                ev.DROP,
                msg_id=message.msg_id,
                src=message.src,
                dst=message.dst,
                path=message.path,
                reason=reason,
            )
        else:
            self._emit(
                ev.DROP,
                msg_id=message.msg_id,
                src=message.src,
                dst=message.dst,
                reason=reason,
                ack=True,
            )

    # --- reliable delivery (the state lives in peerlab.reliable) --------------------------

    def _attempt(self, pending: Pending) -> None:
        """Transmit a reliable message once more, or note that it waits for a route."""
        pending.attempts += 1
        data = self._reliable.sender.stamp(pending)
        if self._first_hop(pending.dst) is None:
            self._reliable.sender.unrouted.add(pending.dst)
            return
        if self._security is not None:
            self._seal(data)
        self._forward(data)

    def _seal(self, data: Data) -> None:
        """Secure mode: give ``data`` its code for its destination (none if we hold no
        certificate of it: then there is no route either)."""
        certificate = self._certificate(data.dst)
        if certificate:
            data.mac = self._security.seal_data(data, certificate)  # type: ignore[union-attr]

    def _certificate(self, member_id: str) -> bytes | None:
        """Secure mode: the certificate of ``member_id``'s advert that we hold."""
        record = self.db.get(member_id)
        return record.advert.certificate if record is not None else None

    def _arm(self, pending: Pending) -> None:
        """Time the next retry of a reliable message (backing off), or its deadline."""
        left = pending.deadline - self.transport.now()
        wait = left
        if self._reliable.sender.in_window(pending):
            backoff = self.config.ack_timeout * 2 ** min(max(pending.attempts - 1, 0), 3)
            wait = min(backoff, left)
        final = wait >= left
        pending.timer = self.transport.call_later(
            wait, lambda: self._on_reliable_timer(pending, final)
        )

    def _on_reliable_timer(self, pending: Pending, final: bool) -> None:
        pending.timer = None
        if final:
            self._drop(pending.data, NO_ACK)
            self._settle(pending)
            return
        self._emit(ev.RETRY, msg_id=pending.data.msg_id, attempt=pending.attempts + 1)
        self._attempt(pending)
        self._arm(pending)

    def _on_ack(self, ack: Ack) -> None:
        pending = self._reliable.sender.get(ack.msg_id)
        if pending is None or pending.dst != ack.src:
            return
        security = self._security
        if security is not None:
            certificate = self._certificate(ack.src)
            if not certificate or not security.ack_is_from(ack, certificate):
                self._drop(ack, BAD_SIGNATURE)
                return
        self._emit(ev.ACKED, msg_id=ack.msg_id, attempts=pending.attempts)
        self._settle(pending)

    def _settle(self, pending: Pending) -> None:
        """Forget a reliable message that was acknowledged or given up, and transmit what that
        lets into its destination's window."""
        if pending.timer is not None:
            pending.timer.cancel()
        for admitted in self._reliable.sender.settle(pending):
            if admitted.timer is not None:
                admitted.timer.cancel()
            self._attempt(admitted)
            self._arm(admitted)

    def _retry_unrouted(self) -> None:
        """Transmit at once the reliable messages that waited for a route that now exists."""
        sender = self._reliable.sender
        index, tree = self.db.index, self._tree
        for dst in sorted(sender.unrouted):
            number = index.get(dst)
            if number is not None and tree.reaches(number):
                sender.unrouted.discard(dst)
                for pending in sender.towards(dst):
                    self._emit(ev.RETRY, msg_id=pending.data.msg_id, attempt=pending.attempts + 1)
                    self._attempt(pending)

    # --- link state and routes -----------------------------------------------------------

    def _fight_back(self, heard: AdvertRecord) -> None:
        """The network holds a version of our advert that is not ours: re-originate above it,
        first flushing it when nothing above it would be taken (see :mod:`peerlab.linkstate`)."""
        flush = not heard.flush and successor(heard.order) >= RESERVED
        own = list(key(self.db.own.order))
        self._emit(ev.FIGHT_BACK, heard=list(key(heard.order)), own=own, flush=flush)
        if flush:
            raw = self.db.flush().raw
            for c in list(self._peers.values()):  # before the advert that follows it
                self._send_msg(c, Adverts([raw]))
        self._originate(self._peers, above=0 if heard.flush else heard.order)

    def _originate(self, neighbours, above: int = 0) -> None:
        outcome = self.db.originate(neighbours, above=above)
        raw = self.db.own.raw
        for peer in self._peers:
            self._outbox.setdefault(peer, {})[self.id] = raw
        self._apply_changes(outcome.changes)
        self._schedule_flush()

    def _apply_changes(self, changes: Iterable[EdgeChange]) -> None:
        if self._timers.route is not None or not self.running:
            return
        tree = self._tree
        if any(tree.may_change(u, v, added) for u, v, added in changes):
            now = self.transport.now()
            delay = max(self.config.route_delay, self._last_route_at + self.config.route_hold - now)
            self._timers.route = self.transport.call_later(delay, self._on_route_timer)

    def _on_route_timer(self) -> None:
        self._timers.route = None
        self._recompute()

    def _recompute(self) -> None:
        now = self.transport.now()
        self._last_route_at = now
        self.counters.route_computations += 1
        old = self._tree
        db = self.db
        tree = shortest_path_tree(db.claimed, db.me, db.index.ids, db.listed)
        self._tree = tree
        self._via.clear()
        if ev.ROUTE_CHANGE in self.tracer.kinds and (
            tree.first_hop != old.first_hop or tree.dist != old.dist
        ):
            changed, removed = tree.differences(old)
            self._emit(
                ev.ROUTE_CHANGE,
                changed=changed,
                removed=removed,
                size=tree.reachable,
                delta=tree.delta(old, db.index.ids),
            )
        since = self._unreachable_since
        if len(db) > tree.reachable + 1 or since:
            ids, dist = db.index.ids, tree.dist
            out_of_reach = len(dist)
            lost = [ids[n] for n in db.held_numbers() if n >= out_of_reach or dist[n] < 0]
            if since:
                still_lost = set(lost)
                for origin in [o for o in since if o not in still_lost]:
                    del since[origin]
            for origin in lost:
                since.setdefault(origin, now)
        if self._reliable.sender.unrouted:
            self._retry_unrouted()
        self._auto_connect()

    def _expire_unreachable(self) -> None:
        now = self.transport.now()
        for origin, since in sorted(self._unreachable_since.items()):
            if now - since >= self.config.max_age:
                del self._unreachable_since[origin]
                self.db.remove(origin)
                self._emit(ev.ADVERT_EXPIRED, origin=origin, unreachable_for=now - since)

    def _auto_connect(self) -> None:
        want = self.config.target_degree - len(self._peers) - len(self._connecting)
        if want <= 0 or not self.running:
            return
        now = self.transport.now()
        discouraged = self._guard.standing.discouraged
        candidates = []
        for origin in sorted(self.db):
            record = self.db.get(origin)
            address = record.advert.address if record is not None else ""
            if (
                origin != self.id
                and origin not in self._peers
                and address
                and address not in self._connecting
                and not discouraged(address, now)
                and self._guard.unverified.get(address, 0) <= now
            ):
                candidates.append((address, origin))
        for address, origin in self.rng.sample(candidates, min(want, len(candidates))):
            # on an advert's word alone: the Hello there must be that member's
            self._guard.expected[address] = origin
            self.connect(address)

    # --- plumbing ------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._timers.flush is None and self._outbox and self.running:
            self._timers.flush = self.transport.call_later(self.config.flood_delay, self._flush)

    def _flush(self) -> None:
        self._timers.flush = None
        outbox, self._outbox = self._outbox, {}
        limit = self.config.max_frame_size // 2
        for peer in sorted(outbox):
            c = self._peers.get(peer)
            if c is None:
                continue
            raws = list(outbox[peer].values())
            if sum(map(len, raws)) <= limit:
                self._send_msg(c, Adverts(raws))
            else:
                batch: list[msgspec.Raw] = []
                size = 0
                for raw in raws:
                    if batch and size + len(raw) > limit:
                        self._send_msg(c, Adverts(batch))
                        batch, size = [], 0
                    batch.append(raw)
                    size += len(raw)
                self._send_msg(c, Adverts(batch))
            if ev.ADVERT_OUT in self.tracer.kinds:
                self._emit(ev.ADVERT_OUT, peer=peer, count=len(raws))

    def _send_msg(self, c: _Conn, message: Message) -> None:
        if c.queued is not None:  # routed messages queued before this one leave first
            self._send_queued(c)
        self._send_frame(c, message)

    def _send_frame(self, c: _Conn, message: Message) -> None:
        # encode_frame, inline: this runs for every frame a member sends or relays
        body = encode_body(message)
        size = len(body)
        if size > self._max_frame_size:
            raise frame_too_large(message, size, self._max_frame_size)
        tally = self._tallies[type(message)]
        tally.frames += 1
        tally.bytes += HEADER_SIZE + size
        self.transport.send(c.handle, frame_header(size) + body)

    def _tick(self) -> None:
        self._timers.tick = None
        if not self.running:
            return
        now = self.transport.now()
        # silence and slowness are counted up to when we last listened: a loop that fell
        # behind (all its members' callbacks late) has peers' bytes unread, not peers quiet
        heard_until = self.transport.caught_up()
        self._judge_unfinished(heard_until)
        for c in list(self._peers.values()):
            # Of two peers, the one with the larger id pings every tick; the other pings only if
            # no Ping came since its last tick. Each still hears from the other at least once an
            # interval (a Ping one way, its Pong the other), as when both pinged, for half the
            # frames; a peer that falls silent is pinged every tick.
            quiet = c.pinged and self.id < c.peer
            c.pinged = False
            silent = heard_until - c.last_heard
            if silent > self.config.dead_timeout:
                self._close(c, f"keepalive timeout (silent for {silent:.3f}s)")
            elif not quiet:
                self._ping_nonce += 1
                self._send_msg(c, Ping(self._ping_nonce))
                c.ping_out = (self._ping_nonce, now)
        self._expire_unreachable()
        self._auto_connect()
        self._timers.tick = self.transport.call_later(self.config.keepalive_interval, self._tick)

    def _handshake_expired(self, conn: Conn) -> None:
        c = self._conns.get(conn)
        if c is not None and c.peer is None:
            c.hello_timer = None
            self._protocol_error(
                c, HandshakeTimeout(f"no Hello within {self.config.handshake_timeout}s")
            )

    def _protocol_error(self, c: _Conn, exc: ProtocolError) -> None:
        self._emit(
            ev.PROTOCOL_ERROR,
            peer=c.peer,
            address=c.remote_address,
            error=type(exc).__name__,
            detail=str(exc),
        )
        reason = f"{PROTOCOL_ERROR_REASON}{exc}"
        # the peer learns why (docs/protocol.md, section 11): our Hello went first, so the
        # connection can carry a Bye whatever state it was in
        if c.open:
            self._send_msg(c, Bye(reason[:MAX_BYE_REASON]))
        self._close(c, reason)
        self._blame(c.address, POINTS.get(type(exc), PROTOCOL_ERROR), type(exc).__name__)

    def _blame(self, address: str, points: float, why: str) -> None:
        """Count misbehaviour against ``address``; past the threshold it is refused a while."""
        now = self.transport.now()
        standing = self._guard.standing
        discouraged = standing.blame(address, points, now)
        score = round(standing.score(address, now), 1)
        self._emit(ev.MISBEHAVED, address=address, why=why, score=score, discouraged=discouraged)

    def _make_room(self, address: str, outbound: bool, now: float) -> str:
        """Make room for a new connection from ``address`` (evicting what the limits say),
        or say why it is refused."""
        guard, config = self._guard, self.config
        if not outbound and guard.standing.discouraged(address, now):
            return f"{address} is discouraged (misbehaviour)"
        pending = [c for c in self._conns.values() if c.peer is None]
        if guard.pending[address] >= config.max_pending_per_address:
            oldest = next(c for c in pending if c.address == address)
            self._close(oldest, f"evicted: {address} has too many handshakes under way")
        elif len(pending) >= config.max_pending_handshakes:
            self._close(pending[0], "evicted: too many handshakes under way")
        if len(self._conns) < config.max_connections:
            return ""
        victim = self._least_useful()
        if victim is None:
            return f"connection limit reached ({config.max_connections})"
        self._close(victim, "evicted to make room")
        return ""

    def _least_useful(self) -> _Conn | None:
        """The connection to give up for a newcomer, as Bitcoin Core evicts: never one we
        dialled, one of the longest-lived, or a first hop to many members; of the rest, the
        newest from the address with the most connections. None if all are protected."""
        pending = [c for c in self._conns.values() if c.peer is None]
        if pending:
            return pending[0]
        inbound = [c for c in self._peers.values() if not c.outbound]
        protected = {id(c) for c in sorted(inbound, key=lambda c: c.opened)[:PROTECT]}
        ids, first = self.db.index.ids, self._tree.first_hop
        carried = Counter(ids[hop] for hop in first if hop >= 0)
        busiest = (self._peers[p] for p, _ in carried.most_common(PROTECT) if p in self._peers)
        protected |= {id(c) for c in busiest}
        candidates = [c for c in inbound if id(c) not in protected]
        if not candidates:
            return None
        crowd = Counter(c.address for c in candidates)
        crowded = max(crowd, key=lambda a: (crowd[a], a))
        return max((c for c in candidates if c.address == crowded), key=lambda c: c.opened)

    def _unfinished(self, c: _Conn, finished: bool) -> None:
        """Book a connection's unfinished frame after a read (``finished``: one or more frames
        ended in it); past the budget of them all, the connection holding most goes."""
        buffered = c.decoder.buffered
        guard = self._guard
        guard.buffered += buffered - c.buffered
        if buffered and (not c.buffered or finished):
            c.frame_since = self.transport.now()
        c.buffered = buffered
        if guard.buffered > self.config.max_buffered:
            hoarder = max(self._conns.values(), key=lambda c: c.buffered)
            self._close(hoarder, f"holding {hoarder.buffered} bytes of an unfinished frame")
            self._blame(hoarder.address, HOARDING, "hoarding")

    def _judge_unfinished(self, now: float) -> None:
        """Close connections whose unfinished frame comes in slower than the minimum rate."""
        config = self.config
        for c in list(self._conns.values()):
            elapsed = now - c.frame_since
            too_slow = c.buffered < config.min_frame_rate * elapsed
            if c.buffered and elapsed > config.frame_grace and too_slow:
                rate = c.buffered / elapsed
                self._protocol_error(
                    c,
                    TooSlow(
                        f"a frame under way for {elapsed:.1f}s at {rate:.0f} bytes/s "
                        f"(at least {config.min_frame_rate:.0f} expected)"
                    ),
                )

    def _close(self, c: _Conn, reason: str) -> None:
        if c.queued is not None and c.open:  # what was sent before the close leaves before it
            self._send_queued(c)
        self.transport.close(c.handle)
        self._forget(c, reason)

    def _forget(self, c: _Conn, reason: str) -> None:
        if not c.open:
            return
        self._discard(c)
        if c.hello_timer is not None:
            c.hello_timer.cancel()
        if c.peer is not None and self._peers.get(c.peer) is c:
            del self._peers[c.peer]
            self._outbox.pop(c.peer, None)
            self._emit(ev.DISCONNECT, peer=c.peer, address=c.remote_address, reason=reason)
            if self.running:
                self._originate(self._peers)
        elif c.peer is None:
            self._emit(ev.DISCONNECT, peer=None, address=c.remote_address, reason=reason)
            if c.outbound:
                self._met_nobody(c.remote_address)

    def _met_nobody(self, address: str) -> None:
        """A dial ended before any member said Hello: if it was made on an advert's word, that
        word is not taken again for a while (an advert may point members at a third party)."""
        if self._guard.expected.pop(address, None) is not None:
            self._guard.unverified[address] = self.transport.now() + UNANSWERED_FOR

    def _discard(self, c: _Conn) -> None:
        """Take a connection out of the member (every closed connection passes here)."""
        self._conns.pop(c.handle, None)
        c.open = False
        guard = self._guard
        guard.buffered -= c.buffered
        c.buffered = 0
        books = guard.established if c.peer is not None else guard.pending
        books[c.address] -= 1
        if books[c.address] <= 0:
            del books[c.address]
        if c.peer is not None:
            self._via.clear()  # it may have been a first hop

    def _emit(self, kind: str, **fields) -> None:
        if kind in self.tracer.kinds:
            self.tracer.emit(self.transport.now(), self.id, kind, **fields)


def member_class(path: str) -> type[Member]:
    """The :class:`Member` subclass named ``module:Class`` (a protocol variant to run in place
    of the standard member); :class:`~peerlab.errors.PeerlabError` says what is wrong."""
    module, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PeerlabError(f"cannot load member class {path!r} (MODULE:CLASS): {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Member)):
        raise PeerlabError(f"{path!r} is not a subclass of peerlab.member.Member")
    return cls


def running_member(members: Mapping[str, M], member_id: str) -> M:
    """``members[member_id]``, or :class:`UnknownMember` naming the members that are running."""
    try:
        return members[member_id]
    except KeyError:
        raise UnknownMember(
            f"no running member {member_id!r} (running: {name_list(members)})"
        ) from None


def take_running(members: dict[str, M], member_id: str) -> M:
    """Remove and return ``members[member_id]``; :class:`UnknownMember` as
    :func:`running_member` if there is none."""
    member = running_member(members, member_id)
    del members[member_id]
    return member


def established_adjacency(members: dict[str, Member]) -> dict[str, set[str]]:
    """Ground truth of a set of members: the pairs that both hold an established connection."""
    adj: dict[str, set[str]] = {mid: set() for mid in members}
    for mid, m in members.items():
        for p in m.neighbours:
            if p in members and mid in members[p].neighbours:
                adj[mid].add(p)
    return adj


def established_links(members: dict[str, Member]) -> list[tuple[str, str]]:
    """:func:`established_adjacency` as sorted pairs."""
    adj = established_adjacency(members)
    return sorted({(u, v) for u in adj for v in adj[u] if u < v})
