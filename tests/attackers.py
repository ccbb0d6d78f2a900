"""Raw-socket attackers for the hostile-peer suite: what a peer that does not keep to the protocol
can do to a member, as an attacker would do it, bounded in count and time.

Attackers dial from a loopback address of their own (:data:`ATTACKER`, not the 127.0.0.1 of the
legitimate members), so that accounting per remote address can tell them apart. An attack runs
on one thread of its own, started and stopped by a ``with`` block, which closes every socket it
opened and fails the test with any error the thread met.
"""

from __future__ import annotations

import errno
import itertools
import select
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import msgspec

from peerlab.wire import (
    HEADER,
    PROTOCOL_VERSION,
    Advert,
    Adverts,
    Data,
    FrameDecoder,
    Hello,
    Message,
    Ping,
    Pong,
    encode_advert,
    encode_frame,
)

#: The loopback address attackers dial from.
ATTACKER = "127.0.0.66"

#: A linger of zero: closing sends a reset (RST) instead of a FIN.
RESET = struct.pack("ii", 1, 0)


def hello(member_id: str, listen_address: str = "", incarnation: int = 1) -> bytes:
    """A valid Hello frame."""
    return encode_frame(Hello(member_id, listen_address, PROTOCOL_VERSION, incarnation))


def frame(body: bytes) -> bytes:
    """A frame around any body, valid or not."""
    return HEADER.pack(len(body)) + body


def nested(depth: int) -> bytes:
    """An Adverts frame whose one advert is an array nested ``depth`` deep: a decoder that skips
    the blob recursively runs out of stack long before the frame runs out of bytes."""
    return frame(b"\x92\xa7adverts\x91" + b"\x91" * depth + b"\xc0")


def unfinished(size: int) -> bytes:
    """The first ``size`` - 1 body bytes of a frame that announces ``size``: never whole."""
    return HEADER.pack(size) + b"\xc0" * (size - 1)


def partial_hello(member_id: str) -> bytes:
    """The start of a Hello frame that announces more body than it will ever send."""
    body = msgspec.msgpack.encode(Hello(member_id, "", PROTOCOL_VERSION, 1))
    return HEADER.pack(len(body) + 4000) + body[:-1]


def connect_from(source: str, target: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """A blocking connection to ``target`` dialled from the address ``source``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


class Attack:
    """An attack on a thread of its own, for at most ``duration`` seconds (or until the ``with``
    block ends); counts what it did. Subclasses implement :meth:`run`, checking
    :meth:`going` at least every few hundredths of a second."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.opened = 0  # connections established
        self.refused = 0  # connections the target refused, reset or closed
        self._stop = threading.Event()
        self._deadline = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=type(self).__name__, daemon=True)

    def __enter__(self) -> Attack:
        self._deadline = time.monotonic() + self.duration
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the attack, wait for its thread, and raise any error the thread met."""
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), f"{type(self).__name__} did not stop"
        if self._error is not None:
            raise self._error

    def going(self) -> bool:
        """Whether the attack should go on."""
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # handed to the test by stop()
            self._error = exc


class Pace:
    """At most ``rate`` events a second, none bunched (no limit if ``rate`` is None)."""

    def __init__(self, rate: float | None) -> None:
        self.every = 1 / rate if rate else 0.0
        self.next = time.monotonic()

    def ready(self) -> bool:
        """Whether one more event may happen now (and if so, count it)."""
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.every
        return True

    def wait(self) -> float:
        """Seconds until :meth:`ready` may say yes."""
        return max(0.0, self.next - time.monotonic())


class ResetChurn(Attack):
    """Connect, then reset at once (no Hello), ``count`` times: as fast as the target accepts,
    or ``rate`` times a second."""

    def __init__(
        self, target: tuple[str, int], count: int, duration: float, rate: float | None = None
    ) -> None:
        super().__init__(duration)
        self.target = target
        self.count = count
        self.rate = rate

    def run(self) -> None:
        pace = Pace(self.rate)
        while self.opened + self.refused < self.count and self.going():
            if not pace.ready():
                self._stop.wait(pace.wait())
                continue
            try:
                sock = connect_from(ATTACKER, self.target, timeout=1.0)
            except OSError:
                self.refused += 1
                continue
            self.opened += 1
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            sock.close()


class _Conn:
    __slots__ = ("n", "out", "sock", "up")

    def __init__(self, n: int, sock: socket.socket) -> None:
        self.n = n
        self.sock = sock
        self.out = b""
        self.up = False


class Swarm(Attack):
    """Many connections to ``target`` on one thread. Once open, each is sent ``opening(n)`` (``n``
    counts the connections opened), then one byte of ``drip`` every ``every`` seconds, if any;
    what the target sends is read and thrown away. A connection the target closes is opened
    again if ``renew`` (at most ``rate`` times a second, if given), up to ``max_opens``
    connections in all."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        conns: int,
        opening: Callable[[int], bytes],
        duration: float,
        drip: bytes = b"",
        every: float = 1.0,
        renew: bool = False,
        max_opens: int | None = None,
        rate: float | None = None,
    ) -> None:
        super().__init__(duration)
        self.target = target
        self.conns = conns
        self.opening = opening
        self.drip = drip
        self.every = every
        self.renew = renew
        self.max_opens = max_opens if max_opens is not None else conns
        self.open = 0  # connections open now
        self._selector = selectors.DefaultSelector()
        self._live: dict[socket.socket, _Conn] = {}
        self._counter = itertools.count()
        self._tries = 0
        self._renewals = Pace(rate)

    def run(self) -> None:
        next_drip = time.monotonic() + self.every
        try:
            while self.going():
                self._fill()
                if not self._live and (self._tries >= self.max_opens or not self.renew):
                    return  # nothing left to do
                for key, mask in self._selector.select(0.02):  # (a wait, with nothing open)
                    self._ready(key.data, mask)
                if self.drip and time.monotonic() >= next_drip:
                    next_drip += self.every
                    for c in list(self._live.values()):
                        if c.up and not c.out:
                            self._send(c, self.drip[:1])
        finally:
            for sock in list(self._live):
                sock.close()
            self._live.clear()
            self._selector.close()

    def _fill(self) -> None:
        """Open connections until ``conns`` are open (or being opened)."""
        while len(self._live) < self.conns and self._tries < self.max_opens:
            if self._tries >= self.conns and not (self.renew and self._renewals.ready()):
                return
            self._tries += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.bind((ATTACKER, 0))
            err = sock.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                self.refused += 1
                continue
            c = _Conn(next(self._counter), sock)
            self._live[sock] = c
            self._selector.register(sock, selectors.EVENT_WRITE, c)

    def _ready(self, c: _Conn, mask: int) -> None:
        if not c.up:
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._drop(c)
                return
            c.up = True
            self.opened += 1
            self.open += 1
            self._selector.modify(c.sock, selectors.EVENT_READ, c)
            self._send(c, self.opening(c.n))
            return
        if mask & selectors.EVENT_WRITE:
            self._send(c, b"")
        if mask & selectors.EVENT_READ and c.sock in self._live:
            try:
                if c.sock.recv(1 << 16):
                    return
            except BlockingIOError:
                return
            except OSError:
                pass
            self._drop(c)

    def _send(self, c: _Conn, data: bytes) -> None:
        c.out += data
        try:
            sent = c.sock.send(c.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(c)
            return
        c.out = c.out[sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
        self._selector.modify(c.sock, events, c)

    def _drop(self, c: _Conn) -> None:
        """The target closed (or refused) ``c``."""
        self.refused += 1
        if c.up:
            self.open -= 1
        self._selector.unregister(c.sock)
        del self._live[c.sock]
        c.sock.close()


class Session(Attack):
    """One connection that completed the handshake as member ``member_id`` (announcing
    ``listen_address``) and stays a neighbour: it answers Pings and reads everything else.
    :meth:`send` writes any bytes on it, :meth:`sync` waits until the target has handled them;
    :attr:`closed` says whether the target closed it."""

    def __init__(
        self, target: tuple[str, int], member_id: str, listen_address: str = "", *, duration: float
    ) -> None:
        super().__init__(duration)
        self.member_id = member_id
        self.sock = connect_from(ATTACKER, target)
        self.sock.settimeout(None)  # writes wait for room; reads wait for select
        self.opened = 1
        self.closed = False
        self.heard: list[Message] = []  # what the target said, Pings and Pongs aside
        self._lock = threading.Lock()
        self._pongs: set[int] = set()
        self._answered = threading.Condition()
        self.send(hello(member_id, listen_address))

    def send(self, data: bytes) -> bool:
        """Write ``data`` (from any thread); False if the target has closed the connection."""
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True
        return not self.closed

    def send_messages(self, messages: Iterable[Message]) -> int:
        """Write each message as a frame, until the target closes the connection; returns how
        many were written."""
        sent = 0
        for message in messages:
            if not self.send(encode_frame(message)):
                break
            sent += 1
        return sent

    def sync(self, timeout: float = 30.0) -> bool:
        """Ping the target and wait for its Pong, which it sends once it has handled all that
        came before; False if it closed the connection instead (AssertionError at the
        deadline)."""
        nonce = len(self._pongs) + 1
        self.send(encode_frame(Ping(nonce)))
        with self._answered:
            if not self._answered.wait_for(lambda: nonce in self._pongs or self.closed, timeout):
                raise AssertionError(f"no Pong from the target within {timeout}s")
        return nonce in self._pongs

    def run(self) -> None:
        decoder = FrameDecoder()
        try:
            while self.going():
                if not select.select([self.sock], [], [], 0.05)[0]:
                    continue
                try:
                    data = self.sock.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    self.refused = 1
                    return
                for message in decoder.feed(data):
                    if isinstance(message, Ping):
                        self.send(encode_frame(Pong(message.nonce)))
                    elif isinstance(message, Pong):
                        with self._answered:
                            self._pongs.add(message.nonce)
                            self._answered.notify_all()
                    else:
                        self.heard.append(message)
        finally:
            with self._answered:
                self.closed = True
                self._answered.notify_all()
            self.sock.close()


def advert(origin: str, neighbours: Iterable[str], address: str = "") -> msgspec.Raw:
    """An encoded advert of ``origin`` (first life, first change)."""
    return encode_advert(Advert(origin, 1, 1, tuple(neighbours), address))


def batches(raws: Iterable[msgspec.Raw], size: int = 400_000) -> Iterator[Adverts]:
    """Adverts batches of about ``size`` bytes each (well under a frame's maximum)."""
    batch: list[msgspec.Raw] = []
    total = 0
    for raw in raws:
        batch.append(raw)
        total += len(raw)
        if total >= size:
            yield Adverts(batch)
            batch, total = [], 0
    if batch:
        yield Adverts(batch)


def invented_members(me: str, count: int, neighbours: int) -> Iterator[Adverts]:
    """Adverts of ``count`` members that do not exist, each listing ``neighbours`` of the others
    (and the attacker ``me``, which lists them all, so that they are reachable through it)."""
    names = [f"{me}-{i}" for i in range(count)]
    yield from batches([advert(me, names)])
    yield from batches(
        advert(name, [me, *(names[(i + k) % count] for k in range(1, neighbours))])
        for i, name in enumerate(names)
    )


def new_ids(prefix: str, count: int, per_advert: int = 1000) -> Iterator[Adverts]:
    """Adverts that between them name ``count`` member ids nobody named before (each starting
    with ``prefix``), ``per_advert`` to an advert, its origin included."""
    names = [f"{prefix}{i}" for i in range(count)]
    chunks = (names[i : i + per_advert] for i in range(0, count, per_advert))
    yield from batches(advert(chunk[0], chunk[1:]) for chunk in chunks)


def pointing_at(me: str, count: int, address: str) -> Iterator[Adverts]:
    """Adverts of ``count`` invented members, linked to ``me`` both ways, that all give
    ``address`` (a third party's) as where they listen."""
    names = [f"{me}-{i}" for i in range(count)]
    yield from batches([advert(me, names), *(advert(name, [me], address) for name in names)])


def looped(src: str, dst: str, path: list[str], n: int) -> Data:
    """A Data message from ``src`` to ``dst`` that claims to have visited ``path`` already."""
    return Data(f"{src}:1:{n}", src, dst, 64, path, b"looped")


class Bystander(Attack):
    """A third party that attacks point members at, at an address of its own on ``host``: it
    accepts whatever connects, says nothing, and closes it; ``opened`` counts the calls."""

    def __init__(self, host: str, duration: float) -> None:
        super().__init__(duration)
        self.server = socket.create_server((host, 0))
        self.address = "{}:{}".format(*self.server.getsockname()[:2])

    def run(self) -> None:
        try:
            while self.going():
                if select.select([self.server], [], [], 0.05)[0]:
                    conn, _ = self.server.accept()
                    self.opened += 1
                    conn.close()
        finally:
            self.server.close()
