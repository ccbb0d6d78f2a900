"""``peerlab conformance HOST:PORT``: scripted exchanges from docs/protocol.md against any
implementation listening at an address, as h2spec does for HTTP/2.

The tester plays one or more fake members, each a raw socket of its own that speaks the wire
protocol with peerlab's codec, and checks what the implementation under test (the *target*)
answers: the handshake, the database exchange, advert ordering and fight-back, the two-way
rule, relaying with path and TTL, acks, batches, keepalive, leave, and a reason on every close
for bad input.

A target in secure mode admits only members its network certified: given the network's key
folder (``--keys DIR``, with the authority's ``network.key``), the tester certifies its own fake
members and runs the secure-mode cases instead (:data:`SECURE_CASES`: the certified handshake
and its proofs, signed adverts, authenticated data and acks, and the refusals of an uncertified
Hello, a bad proof and a forged advert).

Against a loopback target each case dials from a loopback address of its own (127.0.x.y), so
that the target's per-address limits and misbehaviour scores (docs/protocol.md, section 4.5)
do not turn one case's deliberate protocol errors against the next.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import msgspec

from peerlab.errors import PeerlabError, ProtocolError
from peerlab.identity import Authority, BadCertificate, Identity, MemberKeys, Trust
from peerlab.realnet.transport import is_loopback
from peerlab.secure import NONCE_SIZE, BadSignature, Security, verify_advert
from peerlab.wire import (
    HEADER,
    MAX_SEQ,
    PROTOCOL_VERSION,
    Ack,
    Advert,
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
    Reliable,
    decode_advert,
    encode_advert,
    encode_frame,
)

#: Seconds the target has for an answer the spec wants at once (a flood delay, a route
#: computation and the network in between, with room for a loaded machine).
PROMPT = 3.0
#: The target's handshake timeout and keepalive, as the spec's defaults give them, with margin.
HANDSHAKE_WAIT = 5.0 + 3.0
DEAD_WAIT = 3.5 + 1.0 + 3.0
#: Seconds between two tries of something the target may not be ready for yet (a route).
RETRY = 0.1


class CaseFailed(Exception):
    """The target did not do what a case expects; the message says what was expected."""


@dataclass
class CaseResult:
    """One case's outcome."""

    name: str
    passed: bool
    detail: str
    seconds: float


@dataclass
class Report:
    """Every case's outcome against one target."""

    target: str
    mode: str = "open"  # or "secure": the target admits certified members only
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every case passed."""
        return all(c.passed for c in self.cases)

    def as_json(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "target": self.target,
            "protocol_version": PROTOCOL_VERSION,
            "mode": self.mode,
            "passed": self.passed,
            "cases": [asdict(c) for c in self.cases],
        }


def _advert(
    origin: str, incarnation: int, seq: int, neighbours: Iterable[str], address: str = ""
) -> Advert:
    return Advert(origin, incarnation, seq, tuple(sorted(neighbours)), address)


def _order(advert: Advert) -> tuple[int, int]:
    return advert.incarnation, advert.seq


class Fake:
    """A fake member on a raw socket: a thread reads every frame the target sends (answering
    its pings unless :attr:`silent`), and the case waits for what it expects."""

    def __init__(self, ctx: Context, member_id: str) -> None:
        self.ctx = ctx
        self.id = member_id
        self.incarnation = ctx.incarnation
        self.seq = 0
        self.silent = False
        self.pings = 0  # pings this fake sent
        self.messages: list[Message] = []
        self.batches = 0  # batch frames received
        self.closed_at: float | None = None
        self.error = ""  # what the target sent that the codec refused
        #: secure mode: this fake's keys and certificate, issued by the tester's authority
        self.security = ctx.security_for(member_id)
        self._cond = threading.Condition()
        self._sending = threading.Lock()  # pongs leave from the reading thread
        self.sock = ctx.dial()
        self._thread = threading.Thread(target=self._read, name=f"fake-{member_id}", daemon=True)
        self._thread.start()

    # --- the reading thread ----------------------------------------------------------------

    def _read(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    break
                for message in decoder.feed(data):
                    self._take(message)
        except ProtocolError as exc:
            self.error = f"the target sent bytes the protocol forbids: {exc}"
        except OSError:
            pass
        with self._cond:
            self.closed_at = time.monotonic()
            self._cond.notify_all()

    def _take(self, message: Message) -> None:
        if isinstance(message, Batch):
            self.batches += 1
            parts: Sequence[Message] = message.messages
        else:
            parts = [message]
        if isinstance(message, Ping) and not self.silent:
            self.send(Pong(message.nonce))
        with self._cond:
            self.messages.extend(parts)
            self._cond.notify_all()

    # --- what a case does ------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Send one message (a send to a target that closed is ignored)."""
        self.send_bytes(encode_frame(message))

    def send_bytes(self, data: bytes) -> None:
        """Send raw bytes."""
        with self._sending:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def mark(self) -> int:
        """A position in what was received: :meth:`expect` with ``since`` looks after it."""
        with self._cond:
            return len(self.messages)

    def expect(
        self, what: str, match: Callable[[Message], bool], timeout: float = PROMPT, since: int = 0
    ) -> Message:
        """The first message from position ``since`` on that ``match`` accepts; CaseFailed
        naming ``what`` if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages[since:]:
                    if match(message):
                        return message
                since = len(self.messages)
                left = deadline - time.monotonic()
                if self.error:
                    raise CaseFailed(f"{what}: {self.error}")
                if self.closed_at is not None:
                    raise CaseFailed(f"{what}: the target closed the connection instead")
                if left <= 0:
                    raise CaseFailed(f"{what}: not within {timeout:g}s")
                self._cond.wait(left)

    def expect_close(self, what: str, timeout: float = PROMPT) -> float:
        """Wait for the target to close; when it did (monotonic seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.closed_at is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaseFailed(f"{what}: the target kept the connection open {timeout:g}s")
                self._cond.wait(left)
            return self.closed_at

    def received(self, since: int = 0) -> list[Message]:
        """The messages received from position ``since`` on (batches unpacked)."""
        with self._cond:
            return self.messages[since:]

    def said(self, kind: type) -> list:
        """Every message of ``kind`` received so far."""
        with self._cond:
            return [m for m in self.messages if isinstance(m, kind)]

    def adverts(self, since: int = 0) -> list[Advert]:
        """Every advert received from position ``since`` on (decoded; a bad one fails)."""
        with self._cond:
            batches = [m for m in self.messages[since:] if isinstance(m, Adverts)]
        try:
            return [decode_advert(raw) for batch in batches for raw in batch.adverts]
        except ProtocolError as exc:
            raise CaseFailed(f"the target sent an invalid advert: {exc}") from None

    def expect_advert(
        self, what: str, match: Callable[[Advert], bool], timeout: float = PROMPT, since: int = 0
    ) -> Advert:
        """The first advert from position ``since`` on that ``match`` accepts."""
        found: list[Advert] = []

        def holds(message: Message) -> bool:
            if not isinstance(message, Adverts):
                return False
            for raw in message.adverts:
                try:
                    advert = decode_advert(raw)
                except ProtocolError:
                    continue
                if match(advert):
                    found.append(advert)
                    return True
            return False

        self.expect(what, holds, timeout, since)
        return found[0]

    def hello(self) -> Hello:
        """Wait for the target's Hello (sent before ours), check it, then say ours."""
        hello = self.expect("the target's hello", lambda m: True, HANDSHAKE_WAIT)
        if not isinstance(hello, Hello):
            raise CaseFailed(f"the target's first message was {type(hello).__name__}, not hello")
        if hello.protocol_version != PROTOCOL_VERSION:
            raise CaseFailed(f"the target speaks version {hello.protocol_version}")
        self.ctx.learn(hello)
        if self.security is None:
            self.send(Hello(self.id, "", PROTOCOL_VERSION, self.incarnation))
        else:
            self._prove(hello)
        return hello

    def secure_hello(self) -> Hello:
        """Our certified Hello, with a fresh nonce (secure mode)."""
        assert self.security is not None
        return Hello(
            self.id,
            "",
            PROTOCOL_VERSION,
            self.incarnation,
            self.security.identity.certificate,
            self.security.nonce(NONCE_SIZE),
        )

    def _prove(self, theirs: Hello) -> None:
        """The secure handshake after the target's Hello: its certificate checked, ours sent,
        its proof checked (it accepted: role A), ours sent (we dialled: role D)."""
        assert self.security is not None
        try:
            cert = self.security.check_hello(theirs)
        except BadCertificate as exc:
            raise CaseFailed(f"the target's hello: {exc}") from None
        self.ctx.target_certificate = theirs.certificate
        ours = self.secure_hello()
        mark = self.mark()
        self.send(ours)
        proof = self.expect("the target's proof", lambda m: isinstance(m, Proof), since=mark)
        assert isinstance(proof, Proof)
        try:
            Security.check_proof(cert, proof.signature, ours, theirs, b"A")
        except BadSignature as exc:
            raise CaseFailed(f"the target's proof: {exc}") from None
        self.send(Proof(self.security.prove(ours, theirs, b"D")))

    def join(self) -> Advert:
        """Handshake, and advertise the target as our neighbour; the target's advert listing
        us (the database exchange brings it)."""
        mark = self.mark()
        self.hello()
        self.advertise([self.ctx.target_id])
        return self.expect_advert(
            f"the target's advert listing {self.id} after the handshake",
            lambda a: a.origin == self.ctx.target_id and self.id in a.neighbours,
            since=mark,
        )

    def advertise(self, neighbours: Iterable[str]) -> Advert:
        """Originate our next advert, listing ``neighbours``."""
        self.seq += 1
        advert = _advert(self.id, self.incarnation, self.seq, neighbours)
        if self.security is not None:
            advert = self.security.sign_advert(advert)
        self.send(Adverts([encode_advert(advert)]))
        return advert

    def sync(self) -> None:
        """Return once the target has handled everything sent so far on this connection (a
        ping's pong comes back after it)."""
        self.pings += 1
        nonce = 7_000_000 + self.pings
        mark = self.mark()
        self.send(Ping(nonce))
        self.expect(
            "a pong (to see what was sent before it handled)",
            lambda m: m == Pong(nonce),
            since=mark,
        )

    def data(self, msg_id: str, dst: str, ttl: int = 64, path: list[str] | None = None) -> Data:
        """A data message from us."""
        return Data(msg_id, self.id, dst, ttl, [self.id] if path is None else path, b"conf")

    def close(self) -> None:
        """Close the socket and stop the reading thread."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


class Context:
    """What every case shares: the target, the addresses to dial from, ids for this run."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.tag = secrets.token_hex(3)
        # a later run's fakes are later lives, as `peerlab member` numbers its lives
        self.incarnation = time.time_ns() // 1_000_000
        self.target_id = ""
        self.target_incarnation = 0
        self._loopback = is_loopback(host)
        self._source = 0
        self.source: str | None = None
        self.fakes: list[Fake] = []
        self._names = 0
        #: secure mode: the authority that certifies the fakes, and the target's certificate
        self.authority: Authority | None = None
        self.trust: Trust | None = None
        self.target_certificate: bytes | None = None

    def security_for(self, member_id: str) -> Security | None:
        """Secure mode: a fake's keys and a certificate for an hour (None in open mode)."""
        if self.authority is None or self.trust is None:
            return None
        keys = MemberKeys.generate()
        cert = self.authority.issue(member_id, keys, int(time.time()) + 3600)
        encoded = msgspec.msgpack.encode(cert)
        return Security(Identity(member_id, keys, encoded, self.trust))

    def next_source(self) -> None:
        """Dial from a loopback address no earlier case used (loopback targets only)."""
        if self._loopback and ":" not in self.host:
            self._source += 1
            self.source = f"127.0.{100 + self._source // 250}.{1 + self._source % 250}"

    def dial(self) -> socket.socket:
        """A connection to the target, from this case's source address."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            if self.source is not None:
                sock.bind((self.source, 0))
            sock.connect((self.host, self.port))
            sock.settimeout(None)  # the reading thread blocks; close() wakes it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            raise CaseFailed(f"cannot connect to the target: {exc}") from None
        return sock

    def fake(self, role: str = "f") -> Fake:
        """A new fake member, connected, with a fresh id."""
        self._names += 1
        fake = Fake(self, f"conf-{self.tag}-{role}{self._names}")
        self.fakes.append(fake)
        return fake

    def name(self, role: str) -> str:
        """An id for a member that exists only in adverts."""
        self._names += 1
        return f"conf-{self.tag}-{role}{self._names}"

    def learn(self, hello: Hello) -> None:
        """Note who the target is (it must say the same every time)."""
        if self.target_id and hello.member_id != self.target_id:
            raise CaseFailed(f"the target said it is {hello.member_id!r}, then {self.target_id!r}")
        self.target_id = hello.member_id
        self.target_incarnation = hello.incarnation

    def close_fakes(self) -> None:
        """Close every fake of the case that ran."""
        for fake in self.fakes:
            fake.close()
        self.fakes.clear()


# --- the cases -------------------------------------------------------------------------------


def routed_pair(ctx: Context) -> tuple[Fake, Fake]:
    """Two fakes joined to the target, once the target relays between them both ways."""
    a, b = ctx.fake(), ctx.fake()
    a.join()
    b.join()
    for src, dst in ((a, b), (b, a)):
        probe(ctx, src, dst, "a route between two fakes")
    return a, b


def probe(ctx: Context, src: Fake, dst: Fake | str, what: str, via: Fake | None = None) -> Data:
    """Send data from ``src`` to ``dst`` every :data:`RETRY` seconds until it arrives (at
    ``via``, for a destination that is no fake); the copy that arrived."""
    receiver = via if via is not None else dst
    assert isinstance(receiver, Fake)
    dst_id = dst if isinstance(dst, str) else dst.id
    deadline = time.monotonic() + PROMPT
    sent: set[str] = set()
    mark = receiver.mark()
    while True:
        msg_id = f"{src.id}:{src.incarnation}:probe{len(sent) + 1}"
        sent.add(msg_id)
        src.send(src.data(msg_id, dst_id))
        try:
            found = receiver.expect(
                what,
                lambda m: isinstance(m, Data) and m.msg_id in sent,
                timeout=RETRY,
                since=mark,
            )
        except CaseFailed:
            if time.monotonic() > deadline:
                raise CaseFailed(f"{what}: no data relayed within {PROMPT:g}s") from None
            continue
        assert isinstance(found, Data)
        return found


def case_hello(ctx: Context) -> str:
    f = ctx.fake()
    hello = f.hello()
    if not hello.member_id:
        raise CaseFailed("the target's hello has an empty id")
    return f"target {hello.member_id!r}, incarnation {hello.incarnation}"


def case_database_exchange(ctx: Context) -> str:
    a = ctx.fake()
    a.join()
    b = ctx.fake()
    mark = b.mark()
    b.join()
    b.expect_advert(
        f"{a.id}'s advert in the database sent to a newcomer",
        lambda x: x.origin == a.id and ctx.target_id in x.neighbours,
        since=mark,
    )
    mine = [x for x in b.adverts(mark) if x.origin == ctx.target_id]
    return f"{len(b.adverts(mark))} adverts on connect, target's own seq {mine[-1].seq}"


def case_flooding(ctx: Context) -> str:
    a, b = ctx.fake(), ctx.fake()
    a.join()
    b.join()
    x = _advert(ctx.name("x"), ctx.incarnation, 5, [a.id])
    mark = b.mark()
    a.send(Adverts([encode_advert(x)]))
    b.expect_advert("news from one neighbour flooded to another", lambda y: y == x, since=mark)
    return "news reached the other neighbour"


def case_advert_ordering(ctx: Context) -> str:
    a, b = ctx.fake(), ctx.fake()
    a.join()
    b.join()
    origin = ctx.name("x")
    held = _advert(origin, ctx.incarnation, 5, [a.id])
    mark = b.mark()
    a.send(Adverts([encode_advert(held)]))
    b.expect_advert("the first advert of a new origin flooded", lambda y: y == held, since=mark)
    mark = b.mark()
    b.send(Adverts([encode_advert(_advert(origin, ctx.incarnation, 3, []))]))
    b.expect_advert(
        "an older advert answered with the newer one held",
        lambda y: y == held,
        since=mark,
    )
    newer = _advert(origin, ctx.incarnation + 1, 1, [])  # a later life outranks any seq
    mark = a.mark()
    b.send(Adverts([encode_advert(newer)]))
    a.expect_advert("a later incarnation at seq 1 taken as news", lambda y: y == newer, since=mark)
    return "older answered with newer; (incarnation, seq) ordered"


def case_equal_seq(ctx: Context) -> str:
    a, b = ctx.fake(), ctx.fake()
    a.join()
    b.join()
    origin = ctx.name("x")
    low, high = sorted(
        (_advert(origin, ctx.incarnation, 7, [n]) for n in ("aaa", "zzz")),
        key=lambda v: bytes(encode_advert(v)),
    )
    mark = b.mark()
    a.send(Adverts([encode_advert(low)]))
    b.expect_advert("the first advert flooded", lambda y: y == low, since=mark)
    mark = b.mark()
    a.send(Adverts([encode_advert(high)]))
    b.expect_advert(
        "at equal order, the greater encoding taken as news", lambda y: y == high, since=mark
    )
    mark = b.mark()
    b.send(Adverts([encode_advert(low)]))
    b.expect_advert(
        "at equal order, the smaller encoding answered with the greater",
        lambda y: y == high,
        since=mark,
    )
    return "greater bytes win at equal (incarnation, seq)"


def case_fight_back(ctx: Context) -> str:
    a, b = ctx.fake(), ctx.fake()
    own = a.join()
    b.join()
    own = max((x for x in a.adverts() + b.adverts() if x.origin == ctx.target_id), key=_order)
    forged = _advert(ctx.target_id, own.incarnation, min(own.seq + 5, MAX_SEQ), [], own.address)
    mark = b.mark()
    a.send(Adverts([encode_advert(forged)]))
    again = b.expect_advert(
        "the target re-originating above a newer advert of itself",
        lambda y: y.origin == ctx.target_id and _order(y) > _order(forged),
        since=mark,
    )
    if a.id not in again.neighbours or b.id not in again.neighbours:
        raise CaseFailed(f"the re-originated advert lists {list(again.neighbours)}")
    # a restarted life of the target's id heard of: seq 1 of a later incarnation
    later = _advert(ctx.target_id, again.incarnation + 1, 1, [], own.address)
    mark = b.mark()
    a.send(Adverts([encode_advert(later)]))
    b.expect_advert(
        "the target re-originating above a later incarnation of itself",
        lambda y: y.origin == ctx.target_id and _order(y) > _order(later),
        since=mark,
    )
    return f"forged {_order(forged)}, re-originated at {_order(again)}"


def case_two_way(ctx: Context) -> str:
    a, b = routed_pair(ctx)
    ghost = ctx.name("ghost")
    a.advertise([ctx.target_id, ghost])
    a.send(Adverts([encode_advert(_advert(ghost, ctx.incarnation, 1, []))]))
    # wait until the target holds both (it floods them to b), then try the one-way link
    mark = b.mark()
    b.expect_advert("the ghost's advert flooded", lambda y: y.origin == ghost, since=mark)
    one_way = f"{b.id}:{b.incarnation}:oneway"
    b.send(b.data(one_way, ghost))
    b.sync()  # handled before the link becomes two-way (it came on another connection)
    a.send(Adverts([encode_advert(_advert(ghost, ctx.incarnation, 2, [a.id]))]))
    found = probe(ctx, b, ghost, "data to a member linked both ways", via=a)
    early = [m for m in a.said(Data) if m.msg_id == one_way]
    if early:
        raise CaseFailed("data was routed over a link only one side lists")
    return f"routed via {a.id} only once both sides listed the link (path {found.path})"


def case_relay(ctx: Context) -> str:
    a, b = routed_pair(ctx)
    mark = b.mark()
    msg_id = f"{a.id}:{a.incarnation}:relay"
    a.send(Data(msg_id, a.id, b.id, 64, [a.id], b"\x00payload\xff"))
    got = b.expect("the relayed data", lambda m: getattr(m, "msg_id", "") == msg_id, since=mark)
    assert isinstance(got, Data)
    want = Data(msg_id, a.id, b.id, 63, [a.id, ctx.target_id], b"\x00payload\xff")
    if got != want:
        raise CaseFailed(f"relayed as {got!r}, expected {want!r}")
    return "path [src, relay], ttl 64 -> 63, the rest unchanged"


def case_ttl(ctx: Context) -> str:
    a, b = routed_pair(ctx)
    mark = b.mark()
    expired = f"{a.id}:{a.incarnation}:ttl1"
    looped = f"{a.id}:{a.incarnation}:loop"
    last = f"{a.id}:{a.incarnation}:ttl2"
    a.send(a.data(expired, b.id, ttl=1))
    a.send(a.data(looped, b.id, path=[a.id, ctx.target_id]))
    a.send(a.data(last, b.id, ttl=2))
    first = b.expect("data with ttl 2 relayed", lambda m: isinstance(m, Data), since=mark)
    assert isinstance(first, Data)
    if first.msg_id == expired:
        raise CaseFailed("data that arrived with ttl 1 was relayed")
    if first.msg_id == looped:
        raise CaseFailed("data whose path holds the relay already was relayed")
    if first.ttl != 1:
        raise CaseFailed(f"data sent with ttl 2 arrived with ttl {first.ttl}, expected 1")
    return "ttl 1 dropped at the relay, a path through the relay dropped, ttl 2 -> 1"


def case_ack(ctx: Context) -> str:
    a, b = routed_pair(ctx)
    msg_id = f"{a.id}:{a.incarnation}:rel1"
    data = Data(msg_id, a.id, ctx.target_id, 64, [a.id], b"ack me", Reliable(a.incarnation, 1, 1))
    for attempt in ("", " (a duplicate)"):
        mark = a.mark()
        a.send(data)
        ack = a.expect(
            f"an ack of reliable data{attempt}", lambda m: isinstance(m, Ack), since=mark
        )
        assert isinstance(ack, Ack)
        if (ack.msg_id, ack.src, ack.dst) != (msg_id, ctx.target_id, a.id):
            raise CaseFailed(
                f"ack {ack.msg_id!r} from {ack.src!r} to {ack.dst!r}; expected {msg_id!r} "
                f"from {ctx.target_id!r} to {a.id!r}"
            )
        if not 1 <= ack.ttl <= 1024:
            raise CaseFailed(f"ack ttl {ack.ttl}")
    mark = a.mark()
    b.send(Ack("other:1:1", b.id, a.id, 5))
    relayed = a.expect("an ack relayed", lambda m: isinstance(m, Ack), since=mark)
    if relayed != Ack("other:1:1", b.id, a.id, 4):
        raise CaseFailed(f"ack relayed as {relayed!r}, expected ttl 5 -> 4, the rest unchanged")
    return "acked (again for a duplicate), src = acknowledger, dst = sender; acks relayed"


def case_batch(ctx: Context) -> str:
    a, b = routed_pair(ctx)
    ids = [f"{a.id}:{a.incarnation}:b{i}" for i in range(3)]
    mark = b.mark()
    a.send(Batch([a.data(ids[0], b.id), Ack("x:1:1", a.id, b.id, 9), a.data(ids[1], b.id)]))
    a.send(Batch([]))
    a.send(a.data(ids[2], b.id))
    b.expect(
        "the last of a batch's messages", lambda m: getattr(m, "msg_id", "") == ids[2], since=mark
    )
    got = [m.msg_id for m in b.received(mark) if isinstance(m, Data | Ack)]
    if got != [ids[0], "x:1:1", ids[1], ids[2]]:
        raise CaseFailed(f"relayed {got}, expected the batch's messages in order, then the next")
    return "each message of a batch relayed in order; an empty batch ignored"


def case_ping(ctx: Context) -> str:
    f = ctx.fake()
    f.join()
    mark = f.mark()
    f.send(Ping(2**64 - 1))
    f.expect("a pong with the ping's nonce", lambda m: m == Pong(2**64 - 1), since=mark)
    f.expect("a ping from the target", lambda m: isinstance(m, Ping), timeout=PROMPT)
    return "pong echoes the nonce; the target pings"


def case_dead_timeout(ctx: Context) -> str:
    f = ctx.fake()
    f.join()
    f.silent = True
    heard = time.monotonic()
    closed = f.expect_close("a silent peer dropped", DEAD_WAIT)
    if f.said(Bye) and f.said(Bye)[-1].reason.startswith("protocol error"):
        raise CaseFailed("a silent peer was closed as a protocol error")
    return f"closed {closed - heard:.1f}s after the last pong"


def case_leave(ctx: Context) -> str:
    a, b = ctx.fake(), ctx.fake()
    a.join()
    b.join()
    a.advertise([])  # the final advert, then Bye
    mark = b.mark()
    a.send(Bye("leaving"))
    a.expect_close("the connection closed after our bye")
    b.expect_advert(
        "the target's advert without the member that left",
        lambda y: y.origin == ctx.target_id and a.id not in y.neighbours,
        since=mark,
    )
    return "closed on bye; re-originated without the member that left"


def _refused(ctx: Context, what: str, opening: bytes, after_hello: bool = False) -> str:
    f = ctx.fake("bad")
    if after_hello:
        f.join()
    f.send_bytes(opening)
    f.expect_close(what)
    return _reason(f, what)


def _reason(f: Fake, what: str) -> str:
    """The reason of the Bye the target closed ``f``'s connection with."""
    byes = f.said(Bye)
    if not byes or not byes[-1].reason:
        raise CaseFailed(f"{what}: closed without a bye naming the reason")
    return byes[-1].reason


def case_bad_version(ctx: Context) -> str:
    return _refused(
        ctx, "a hello of an unknown version", encode_frame(Hello(ctx.name("v"), "", 99, 1))
    )


def case_data_before_hello(ctx: Context) -> str:
    return _refused(ctx, "data before hello", encode_frame(Data("m", "s", "d", 3, ["s"], b"")))


def case_map_body(ctx: Context) -> str:
    body = msgspec.msgpack.encode({"type": "ping", "nonce": 1})
    return _refused(ctx, "a map body", HEADER.pack(len(body)) + body, after_hello=True)


def case_unknown_tag(ctx: Context) -> str:
    body = msgspec.msgpack.encode(["nope", 1])
    return _refused(ctx, "an unknown tag", HEADER.pack(len(body)) + body, after_hello=True)


def case_oversize_frame(ctx: Context) -> str:
    return _refused(ctx, "a frame over the maximum size", HEADER.pack(1 << 31), after_hello=True)


def case_second_hello(ctx: Context) -> str:
    hello = encode_frame(Hello(ctx.name("h"), "", PROTOCOL_VERSION, 1))
    return _refused(ctx, "a second hello", hello, after_hello=True)


def case_handshake_timeout(ctx: Context) -> str:
    f = ctx.fake("slow")
    start = time.monotonic()
    closed = f.expect_close("a connection that never says hello", HANDSHAKE_WAIT)
    return f"closed after {closed - start:.1f}s"


def case_secure_handshake(ctx: Context) -> str:
    f = ctx.fake()
    advert = f.join()
    assert ctx.trust is not None
    try:
        verify_advert(advert, ctx.trust)
    except ProtocolError as exc:
        raise CaseFailed(f"the target's advert: {exc}") from None
    return "certificate and proof checked both ways; the target's advert signed"


def case_secure_uncertified(ctx: Context) -> str:
    hello = Hello(ctx.name("u"), "", PROTOCOL_VERSION, 1)
    return _refused(ctx, "a hello without a certificate", encode_frame(hello))


def case_secure_bad_proof(ctx: Context) -> str:
    f = ctx.fake("bad")
    f.expect("the target's hello", lambda m: isinstance(m, Hello), HANDSHAKE_WAIT)
    f.send(f.secure_hello())
    f.send(Proof(bytes(64)))
    f.expect_close("a proof that is no signature of the transcript")
    return _reason(f, "a bad proof")


def case_secure_forged_advert(ctx: Context) -> str:
    f = ctx.fake("bad")
    f.join()
    assert f.security is not None
    signed = f.security.sign_advert(_advert(f.id, f.incarnation, f.seq + 1, [ctx.target_id]))
    forged = msgspec.structs.replace(signed, signature=bytes(64))
    f.send(Adverts([encode_advert(forged)]))
    f.expect_close("an advert whose signature is not its origin's")
    return _reason(f, "a forged advert")


def case_secure_data(ctx: Context) -> str:
    f = ctx.fake()
    f.join()
    assert f.security is not None and ctx.target_certificate is not None
    target, certificate = ctx.target_id, ctx.target_certificate

    def reliable(seq: int, mac: bytes | None) -> Data:
        data = Data(f"{f.id}:{f.incarnation}:s{seq}", f.id, target, 64, [f.id], b"signed", None)
        data.reliable = Reliable(f.incarnation, seq, 1)
        data.mac = mac if mac is not None else f.security.seal_data(data, certificate)
        return data

    # sent again every RETRY seconds (a duplicate is acked again) until the target has a route
    # back to us for its ack
    deadline, mark = time.monotonic() + PROMPT, f.mark()
    while True:
        f.send(reliable(1, None))
        try:
            ack = f.expect("an ack", lambda m: isinstance(m, Ack), timeout=RETRY, since=mark)
            break
        except CaseFailed:
            if time.monotonic() > deadline:
                raise CaseFailed(f"no ack of authenticated data within {PROMPT:g}s") from None
    assert isinstance(ack, Ack)
    if not f.security.ack_is_from(ack, certificate):
        raise CaseFailed("the target's ack does not carry its code")
    mark = f.mark()
    f.send(reliable(2, bytes(16)))
    f.sync()
    if any(isinstance(m, Ack) for m in f.received(mark)):
        raise CaseFailed("the target acknowledged data whose code does not check")
    return "authenticated data acknowledged with the target's code; a forged code not"


#: Every case, in the order they run: (name, what the spec wants, the case).
CASES: list[tuple[str, str, Callable[[Context], str]]] = [
    ("hello", "the target says hello first, version 2", case_hello),
    ("database-exchange", "the whole database on connect", case_database_exchange),
    ("flooding", "news flooded to the other neighbours", case_flooding),
    ("advert-ordering", "(incarnation, seq) order; old news answered", case_advert_ordering),
    ("equal-seq", "greater encoding wins at equal order", case_equal_seq),
    ("fight-back", "re-originate above a newer advert of oneself", case_fight_back),
    ("two-way", "no route over a link one side lists", case_two_way),
    ("relay", "path and ttl of relayed data", case_relay),
    ("ttl-and-loops", "ttl 1 and looped data not relayed", case_ttl),
    ("ack", "reliable data acknowledged; acks relayed", case_ack),
    ("batch", "batched messages handled in order", case_batch),
    ("keepalive", "pong echoes the nonce; the target pings", case_ping),
    ("dead-timeout", "a silent peer dropped", case_dead_timeout),
    ("leave", "final advert and bye honoured", case_leave),
    ("bad-version", "unknown version refused with a reason", case_bad_version),
    ("data-before-hello", "refused with a reason", case_data_before_hello),
    ("map-body", "a map body refused with a reason", case_map_body),
    ("unknown-tag", "an unknown tag refused with a reason", case_unknown_tag),
    ("oversize-frame", "an oversize frame refused with a reason", case_oversize_frame),
    ("second-hello", "a second hello refused with a reason", case_second_hello),
    ("handshake-timeout", "a silent newcomer dropped", case_handshake_timeout),
]
#: The cases against a target in secure mode (the tester certifies its fakes).
SECURE_CASES: list[tuple[str, str, Callable[[Context], str]]] = [
    (
        "secure-handshake",
        "certificates and proofs both ways; signed adverts",
        case_secure_handshake,
    ),
    ("secure-uncertified", "an uncertified hello refused with a reason", case_secure_uncertified),
    ("secure-bad-proof", "a bad proof refused with a reason", case_secure_bad_proof),
    ("secure-forged-advert", "a forged advert refused with a reason", case_secure_forged_advert),
    ("secure-data", "data and acks authenticated end to end", case_secure_data),
]
CASE_NAMES = [name for name, _, _ in CASES]


def check_target(host: str, port: int, timeout: float = 5.0) -> None:
    """Raise :class:`PeerlabError` unless something accepts connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PeerlabError(f"cannot connect to {host}:{port}: {reason}") from None


def run(
    host: str,
    port: int,
    cases: Sequence[str] | None = None,
    *,
    timeout: float = 5.0,
    progress: Callable[[CaseResult], None] | None = None,
    authority: Authority | None = None,
) -> Report:
    """Run the named ``cases`` (all by default) against the implementation at
    ``host:port``; ``progress`` is told each result as it comes. With the ``authority`` of the
    target's network the target is in secure mode, and the secure cases run."""
    every = CASES if authority is None else SECURE_CASES
    known = [name for name, _, _ in every]
    unknown = sorted(set(cases or ()) - set(known))
    if unknown:
        raise PeerlabError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}")
    check_target(host, port, timeout)
    ctx = Context(host, port, timeout)
    if authority is not None:
        ctx.authority, ctx.trust = authority, Trust(authority.network, time.time)
    report = Report(f"{host}:{port}", "open" if authority is None else "secure")
    for name, _, case in every:
        if cases and name not in cases:
            continue
        ctx.next_source()
        start = time.monotonic()
        try:
            detail, passed = case(ctx), True
        except CaseFailed as exc:
            detail, passed = str(exc), False
        finally:
            ctx.close_fakes()
        result = CaseResult(name, passed, detail, round(time.monotonic() - start, 3))
        report.cases.append(result)
        if progress is not None:
            progress(result)
    return report
