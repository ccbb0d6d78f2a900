"""minipeer: a small second implementation of the peerlab wire protocol, written from
docs/protocol.md with only the standard library and the general ``msgpack`` package (it does not
import peerlab). Open mode only.

    python examples/minipeer.py --id m --listen 127.0.0.1:9100 --join 127.0.0.1:9000

It reads commands on standard input, one a line: ``send DST TEXT``, ``peers``, ``routes``,
``quit`` (also at the end of the input), and prints what happens (``listening on``,
``connect peer=``, ``disconnect peer=``, ``<SRC> TEXT (path a -> b)`` for a delivery).

``--no-fight-back`` makes it deliberately wrong (it ignores newer adverts of itself), so that
``peerlab conformance`` can be seen to catch it.
"""

from __future__ import annotations

import argparse
import errno
import os
import selectors
import socket
import sys
import time

import msgpack

VERSION = 2
MAX_FRAME = 1 << 20
FIRST_FRAME = 16 << 10
MAX_INC = 2**53 - 1
MAX_SEQ = 2**32 - 1
RESERVED = (MAX_INC, 0)  # orders from here up are reserved
TOP = (MAX_INC, MAX_SEQ)  # the flush
MAX_TTL = 1024
TTL = 64
KEEPALIVE = 1.0
DEAD = 3.5
HANDSHAKE = 5.0
MAX_AGE = 60.0
REDIAL = 1.0


class Refused(Exception):
    """The peer broke the protocol; the text says how."""


# --- the body encoding (docs/protocol.md, sections 3 and 5) ---------------------------------


def pack(value: list) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def frame(value: list) -> bytes:
    if value[0] == "adverts":  # adverts are nested msgpack values, sent as received
        packer = msgpack.Packer(use_bin_type=True)
        blobs = value[1]
        body = packer.pack_array_header(2) + packer.pack("adverts")
        body += packer.pack_array_header(len(blobs)) + b"".join(blobs)
    else:
        body = pack(value)
    return len(body).to_bytes(4, "big") + body


def _int(v, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise Refused(f"expected an integer in {lo}..{hi}, got {v!r}")
    return v


def _str(v, lo: int = 0, hi: int | None = None) -> str:
    if type(v) is not str or len(v) < lo or (hi is not None and len(v) > hi):
        raise Refused(f"expected a string of {lo}..{hi} characters, got {v!r:.40}")
    return v


def _bin(v, hi: int | None = None, nil: bool = False) -> bytes | None:
    if v is None and nil:
        return None
    if type(v) is not bytes or (hi is not None and len(v) > hi):
        raise Refused(f"expected bytes, got {type(v).__name__}")
    return v


def _id(v) -> str:
    return _str(v, 1, 128)


def _list(v, hi: int | None = None) -> list:
    if type(v) is not list or (hi is not None and len(v) > hi):
        raise Refused(f"expected an array, got {type(v).__name__}")
    return v


def _fields(v: list, required: int, defaults: list) -> list:
    if len(v) < required:
        raise Refused(f"expected at least {required} fields, got {len(v)}")
    v = v[: required + len(defaults)]  # later fields belong to later revisions
    return v + defaults[len(v) - required :]


def check_advert(v) -> list:
    """An advert's fields, checked: [origin, incarnation, seq, neighbours, address, ...]."""
    v = _fields(_list(v), 5, [None, None])
    _id(v[0])
    _int(v[1], 0, MAX_INC)
    _int(v[2], 1, MAX_SEQ)
    for n in _list(v[3]):
        _id(n)
    _str(v[4], 0, 256)
    _bin(v[5], 512, nil=True)
    _bin(v[6], 64, nil=True)
    if (v[1], v[2]) == TOP and v[3]:
        raise Refused("a flush that lists neighbours")
    return v


def check_routed(v, tag: str) -> list:
    if tag == "data":
        v = _fields(v, 7, [None, None])
        _str(v[1]), _id(v[2]), _id(v[3]), _int(v[4], 0, MAX_TTL)
        for hop in _list(v[5], MAX_TTL + 1):
            _id(hop)
        _bin(v[6])
        if v[7] is not None:
            r = _fields(_list(v[7]), 3, [])
            _int(r[0], 0, MAX_INC), _int(r[1], 1, MAX_SEQ), _int(r[2], 1, MAX_SEQ)
        _bin(v[8], 32, nil=True)
    else:
        v = _fields(v, 5, [None])
        _str(v[1]), _id(v[2]), _id(v[3]), _int(v[4], 0, MAX_TTL), _bin(v[5], 32, nil=True)
    return v


def decode(body: bytes) -> tuple[str, list]:
    """A body as (tag, fields), every field checked; adverts stay as their raw bytes."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(body)
    try:
        size = u.read_array_header()
        tag = u.unpack() if size else None
        if tag == "adverts" and size >= 2:
            blobs = []
            for _ in range(u.read_array_header()):
                start = u.tell()
                u.skip()
                blobs.append(body[start : u.tell()])
            for _ in range(size - 2):
                u.skip()
            fields = [tag, blobs]
        else:
            fields = [tag] + [u.unpack() for _ in range(size - 1)]
        if u.tell() != len(body):
            raise Refused("bytes after the message")
    except Refused:
        raise
    except Exception as exc:  # msgpack's errors: not msgpack, or not an array
        raise Refused(f"undecodable body: {type(exc).__name__}: {exc}") from None
    if tag == "hello":
        v = _fields(fields, 4, [0, None, None])
        _id(v[1]), _str(v[2], 0, 256), _int(v[3], -(2**63), 2**64 - 1), _int(v[4], 0, MAX_INC)
        _bin(v[5], 512, nil=True), _bin(v[6], 64, nil=True)
    elif tag in ("ping", "pong"):
        v = _fields(fields, 2, [])
        _int(v[1], -(2**63), 2**64 - 1)
    elif tag == "bye":
        v = _fields(fields, 2, [])
        _str(v[1])
    elif tag == "adverts":
        v = _fields(fields, 2, [])
    elif tag in ("data", "ack"):
        v = check_routed(fields, tag)
    elif tag == "batch":
        v = _fields(fields, 2, [])
        inner = []
        for m in _list(v[1]):
            if type(m) is not list or not m or m[0] not in ("data", "ack"):
                raise Refused("a batch holds data and ack only")
            inner.append(check_routed(m, m[0]))
        v = [tag, inner]
    elif tag == "proof":
        v = _fields(fields, 2, [])
        _bin(v[1], 64)
    else:
        raise Refused(f"unknown message {tag!r:.40}")
    return tag, v


# --- orders (section 6) -------------------------------------------------------------------


def successor(order: tuple[int, int]) -> tuple[int, int]:
    inc, seq = order
    return (inc, seq + 1) if seq < MAX_SEQ else (inc + 1, 1)


class Record:
    """One advert held: its raw bytes and fields."""

    def __init__(self, raw: bytes, fields: list) -> None:
        self.raw = raw
        self.origin = fields[0]
        self.order = (fields[1], fields[2])
        self.neighbours = set(fields[3]) - {self.origin}


class Conn:
    def __init__(self, sock: socket.socket, outbound: bool, address: str, now: float) -> None:
        self.sock = sock
        self.outbound = outbound
        self.address = address
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.peer: str | None = None
        self.incarnation = 0
        self.opened = now
        self.last_heard = now
        self.pinged = False
        self.closing = False
        self.connecting = outbound


class MiniPeer:
    def __init__(self, member_id: str, host: str, port: int, fight_back: bool = True) -> None:
        self.id = member_id
        self.incarnation = time.time_ns() // 1_000_000
        self.fight_back = fight_back
        self.sel = selectors.DefaultSelector()
        self.listener = socket.create_server((host, port))
        self.listener.setblocking(False)
        self.address = f"{host}:{self.listener.getsockname()[1]}"
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.conns: dict[int, Conn] = {}
        self.peers: dict[str, Conn] = {}
        self.db: dict[str, Record] = {}
        self.flushed: set[str] = set()
        self.outbox: dict[str, dict[str, bytes]] = {}
        self.unreachable: dict[str, float] = {}
        self.seen: set[tuple] = set()
        self.count = 0
        self.own_order = (self.incarnation, 1)
        self._install_own([])
        self.joins: dict[str, str | None] = {}  # address kept dialled -> member met there
        self.next_dial = 0.0
        self.next_tick = time.monotonic() + KEEPALIVE
        self.running = True
        self._routes: dict[str, str] | None = None

    def say(self, text: str) -> None:
        print(text, flush=True)

    # --- link state ----------------------------------------------------------------------

    def _install_own(self, neighbours) -> None:
        fields = [self.id, *self.own_order, sorted(neighbours), self.address, None, None]
        self.db[self.id] = Record(pack(fields), fields)
        self._routes = None

    def originate(self, above: tuple[int, int] = (0, 0)) -> None:
        order = successor(max(self.own_order, above))
        if order >= RESERVED:
            order = successor(self.own_order)
            if order >= RESERVED:
                order = (self.incarnation, 1)
        self.own_order = order
        self._install_own(self.peers)
        for peer in self.peers:
            self.outbox.setdefault(peer, {})[self.id] = self.db[self.id].raw

    def on_adverts(self, c: Conn, blobs: list[bytes]) -> None:
        try:
            adverts = [msgpack.unpackb(raw, raw=False, strict_map_key=False) for raw in blobs]
        except Exception as exc:  # msgpack's errors
            raise Refused(f"undecodable advert: {exc}") from None
        records = [Record(raw, check_advert(v)) for raw, v in zip(blobs, adverts, strict=True)]
        for r in records:
            held = self.db.get(r.origin)
            if r.origin == self.id:
                if not self.fight_back:
                    continue
                if r.order == TOP:
                    self.originate()
                elif r.order >= held.order and r.raw != held.raw:
                    if successor(max(r.order, self.own_order)) >= RESERVED:
                        flush = pack([self.id, *TOP, [], self.address, None, None])
                        for p in self.peers.values():
                            self.send(p, ["adverts", [flush]])
                        self.originate()
                    else:
                        self.originate(above=r.order)
                continue
            news = held is None
            if held is not None and held.raw != r.raw:
                if r.origin in self.flushed and r.order >= RESERVED:
                    news = False
                elif held.order == TOP or r.order > held.order:
                    news = True
                elif r.order == held.order:
                    news = r.raw > held.raw
                if not news:  # old news: the sender needs ours
                    self.outbox.setdefault(c.peer, {})[r.origin] = held.raw
            if news:
                self.db[r.origin] = r
                self._routes = None
                if r.order == TOP:
                    self.flushed.add(r.origin)
                for peer in self.peers:
                    if peer != c.peer:
                        self.outbox.setdefault(peer, {})[r.origin] = r.raw

    def routes(self) -> dict[str, str]:
        """Destination -> first hop, by BFS over two-way links, neighbours in id order."""
        if self._routes is not None:
            return self._routes
        first: dict[str, str] = {}
        frontier = [self.id]
        seen = {self.id}
        while frontier:
            nxt = []
            for u in frontier:
                for v in sorted(self.db[u].neighbours):
                    if v in seen or v not in self.db or u not in self.db[v].neighbours:
                        continue
                    seen.add(v)
                    first[v] = v if u == self.id else first[u]
                    nxt.append(v)
            frontier = nxt
        self._routes = first
        return first

    # --- data ----------------------------------------------------------------------------

    def send_text(self, dst: str, text: str) -> str:
        self.count += 1
        msg_id = f"{self.id}:{self.incarnation}:{self.count}"
        data = ["data", msg_id, self.id, dst, TTL, [self.id], text.encode(), None, None]
        if dst == self.id:
            self.deliver(data)
        else:
            self.forward(data)
        return msg_id

    def forward(self, message: list) -> None:
        hop = self.routes().get(message[3])
        if hop is None or hop not in self.peers:
            self.say(f"* drop msg_id={message[1]} reason=no_route")
            return
        self.send(self.peers[hop], message)

    def on_data(self, data: list) -> None:
        path = data[5]
        if self.id in path:
            return  # a loop
        path.append(self.id)
        if data[3] == self.id:
            self.deliver(data)
        elif data[4] > 1:
            data[4] -= 1
            self.forward(data)

    def on_ack(self, ack: list) -> None:
        if ack[3] != self.id and ack[4] > 1:
            ack[4] -= 1
            self.forward(ack)

    def deliver(self, data: list) -> None:
        reliable = data[7]
        if reliable is not None:
            if reliable[1] < reliable[2]:
                return  # below the sender's floor: settled there already
            self.forward(["ack", data[1], self.id, data[2], TTL, None])
            key = (data[2], *reliable[:2])
            if key in self.seen:
                return
            self.seen.add(key)
        text = data[6].decode(errors="replace")
        self.say(f"<{data[2]}> {text}   (path {' -> '.join(data[5])})")

    # --- connections ---------------------------------------------------------------------

    def dial(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex((host, int(port)))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            return
        c = Conn(sock, True, address, time.monotonic())
        self.conns[sock.fileno()] = c
        self.sel.register(sock, selectors.EVENT_WRITE, c)

    def opened(self, c: Conn) -> None:
        c.connecting = False
        self.sel.modify(c.sock, selectors.EVENT_READ, c)
        self.send(c, ["hello", self.id, self.address, VERSION, self.incarnation, None, None])

    def send(self, c: Conn, message: list) -> None:
        if c.closing:
            return
        c.wbuf += frame(message)
        self.write(c)

    def write(self, c: Conn) -> None:
        try:
            sent = c.sock.send(c.wbuf)
            del c.wbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            c.wbuf.clear()
            self.drop(c, "write failed")
            return
        if c.sock.fileno() < 0:
            return
        if c.wbuf:
            self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        elif c.closing:
            self.drop(c, "closed")
        else:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def close(self, c: Conn, bye: str | None = None) -> None:
        """Close ``c`` once what was sent has left; say Bye first if given."""
        if bye is not None:
            self.send(c, ["bye", bye])
        self.forget(c, bye or "closed")
        c.closing = True
        self.write(c)

    def drop(self, c: Conn, reason: str) -> None:
        self.forget(c, reason)
        if c.sock.fileno() >= 0:
            self.sel.unregister(c.sock)
            self.conns.pop(c.sock.fileno(), None)
            c.sock.close()

    def forget(self, c: Conn, reason: str) -> None:
        if c.peer is not None and self.peers.get(c.peer) is c:
            del self.peers[c.peer]
            self.outbox.pop(c.peer, None)
            self.say(f"* disconnect peer={c.peer} reason={reason}")
            if self.running:
                self.originate()
        c.peer = None

    def on_readable(self, c: Conn) -> None:
        try:
            data = c.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self.drop(c, "closed by peer")
            return
        c.last_heard = time.monotonic()
        c.rbuf += data
        try:
            while len(c.rbuf) >= 4 and not c.closing and c.sock.fileno() >= 0:
                size = int.from_bytes(c.rbuf[:4], "big")
                limit = MAX_FRAME if c.peer is not None else FIRST_FRAME
                if size > limit:
                    raise Refused(f"frame length {size} exceeds the maximum frame size {limit}")
                if len(c.rbuf) < 4 + size:
                    break
                body = bytes(c.rbuf[4 : 4 + size])
                del c.rbuf[: 4 + size]
                self.handle(c, *decode(body))
        except Refused as exc:
            self.close(c, bye=f"protocol error: {exc}")

    def handle(self, c: Conn, tag: str, v: list) -> None:
        if c.peer is None:
            if tag == "bye":
                self.close(c)
            elif tag != "hello":
                raise Refused(f"received {tag} before Hello")
            elif v[3] != VERSION:
                raise Refused(f"protocol version {v[3]} not supported (this member speaks 2)")
            elif v[1] == self.id:
                raise Refused("peer claims our own id")
            else:
                self.established(c, v[1], v[4])
            return
        if tag in ("hello", "proof"):  # proof: this member speaks open mode only
            raise Refused(f"{tag} on an established connection")
        if tag == "adverts":
            self.on_adverts(c, v[1])
        elif tag == "data":
            self.on_data(v)
        elif tag == "ack":
            self.on_ack(v)
        elif tag == "batch":
            for m in v[1]:
                self.on_data(m) if m[0] == "data" else self.on_ack(m)
        elif tag == "ping":
            c.pinged = True
            self.send(c, ["pong", v[1]])
        elif tag == "bye":  # the peer left: do not dial it again
            for address, met in list(self.joins.items()):
                if met == c.peer:
                    del self.joins[address]
            self.close(c)

    def established(self, c: Conn, peer: str, incarnation: int) -> None:
        c.peer, c.incarnation = peer, incarnation
        if c.outbound and c.address in self.joins:
            self.joins[c.address] = peer
        old = self.peers.get(peer)
        if old is not None:

            def opener(x: Conn) -> str:
                return self.id if x.outbound else peer

            if old.incarnation != incarnation:
                keep = c if incarnation > old.incarnation else old
            elif opener(old) != opener(c):
                keep = old if opener(old) == min(self.id, peer) else c
            else:
                keep = c
            lose = old if keep is c else c
            lose.peer = None
            self.peers[peer] = keep
            self.drop(lose, "duplicate connection")
            if keep is old:
                return
        self.peers[peer] = c
        self.say(f"* connect peer={peer} address={c.address}")
        box = self.outbox.setdefault(peer, {})
        for origin in sorted(self.db):
            box[origin] = self.db[origin].raw
        if old is None:
            self.originate()

    # --- the loop ------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        for c in list(self.conns.values()):
            if c.peer is None and not c.closing and now - c.opened > HANDSHAKE:
                self.close(c, bye=f"protocol error: no Hello within {HANDSHAKE}s")
        for c in list(self.peers.values()):
            quiet = c.pinged and self.id < c.peer
            c.pinged = False
            if now - c.last_heard > DEAD:
                self.drop(c, "keepalive timeout")
            elif not quiet:
                self.send(c, ["ping", int(now * 1000)])
        reachable = set(self.routes())
        for origin in list(self.db):
            if origin == self.id or origin in reachable:
                self.unreachable.pop(origin, None)
            elif now - self.unreachable.setdefault(origin, now) >= MAX_AGE:
                del self.db[origin]
                self.flushed.discard(origin)
                self.unreachable.pop(origin)
                self._routes = None

    def flush(self) -> None:
        outbox, self.outbox = self.outbox, {}
        for peer, box in outbox.items():
            if peer in self.peers and box:
                self.send(self.peers[peer], ["adverts", list(box.values())])

    def command(self, line: str) -> None:
        words = line.split(None, 2)
        if not words or words[0].startswith("#"):
            return
        if words[0] == "send" and len(words) == 3:
            self.say(f"sent {self.send_text(words[1], words[2])}")
        elif words[0] == "peers":
            self.say(" ".join(sorted(self.peers)) or "(no peers)")
        elif words[0] == "routes":
            for dst, hop in sorted(self.routes().items()):
                self.say(f"{dst:>12} via {hop}")
        elif words[0] == "quit":
            self.running = False
        else:
            self.say(f"error: cannot understand {line.strip()!r}")

    def run(self, joins: list[str]) -> None:
        self.joins = dict.fromkeys(joins)
        stdin = sys.stdin.fileno()
        try:
            self.sel.register(stdin, selectors.EVENT_READ, "stdin")
            os.set_blocking(stdin, False)
        except (PermissionError, ValueError):  # not a pipe or terminal: no commands
            pass
        pending = b""
        self.say(f"member {self.id} listening on {self.address}")
        while self.running:
            now = time.monotonic()
            if now >= self.next_dial:
                self.next_dial = now + REDIAL
                dialling = {c.address for c in self.conns.values() if c.outbound}
                for address, met in self.joins.items():
                    if met not in self.peers and address not in dialling:
                        self.dial(address)
            if now >= self.next_tick:
                self.next_tick = now + KEEPALIVE
                self.tick(now)
            for key, mask in self.sel.select(timeout=0.05):
                if key.data == "accept":
                    try:
                        sock, addr = self.listener.accept()
                    except OSError:  # gone before we took it, or out of descriptors
                        continue
                    sock.setblocking(False)
                    c = Conn(sock, False, f"{addr[0]}:{addr[1]}", now)
                    self.conns[sock.fileno()] = c
                    self.sel.register(sock, selectors.EVENT_READ, c)
                    self.opened(c)
                elif key.data == "stdin":
                    chunk = os.read(stdin, 4096)
                    if not chunk:
                        self.sel.unregister(stdin)
                        self.running = False
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        self.command(line.decode(errors="replace"))
                else:
                    c = key.data
                    if c.sock.fileno() < 0:
                        continue
                    if c.connecting:
                        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            self.drop(c, "connect failed")
                        else:
                            self.opened(c)
                    elif mask & selectors.EVENT_READ:
                        self.on_readable(c)
                    elif mask & selectors.EVENT_WRITE:
                        self.write(c)
            self.flush()
        self.leave()

    def leave(self) -> None:
        """The final advert, then Bye, to every neighbour; then close everything."""
        self.own_order = successor(self.own_order)
        self._install_own([])
        peers = list(self.peers.values())
        self.peers.clear()
        for c in peers:
            self.send(c, ["adverts", [self.db[self.id].raw]])
            self.send(c, ["bye", "leaving"])
            c.sock.setblocking(True)
            c.sock.settimeout(1.0)
            try:
                c.sock.sendall(c.wbuf)
            except OSError:
                pass
        for c in list(self.conns.values()):
            c.sock.close()
        self.listener.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="a minimal peerlab-protocol member")
    parser.add_argument("--id", required=True)
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--join", nargs="*", default=[], metavar="HOST:PORT")
    parser.add_argument(
        "--no-fight-back",
        action="store_true",
        help="deliberately broken: ignore newer adverts of itself",
    )
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    peer = MiniPeer(args.id, host, int(port), fight_back=not args.no_fight_back)
    try:
        peer.run(args.join)
    except KeyboardInterrupt:
        peer.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
