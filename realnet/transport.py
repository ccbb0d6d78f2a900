"""TcpTransport: a member's real TCP sockets, driven by an :class:`~peerlab.realnet.loop.EventLoop`.

Writes follow asyncio's selector transport: try ``send`` at once, buffer what is left, watch for
EVENT_WRITE only while something is buffered. Socket errors never reach the member: they become
``connection_lost`` or ``connect_failed`` with a reason. As in asyncio, anything that raises while
one connection's readiness is handled (the member's callbacks included) closes that connection
with the reason ``internal error: ...``, logged once and counted on the loop, never kept.

With TLS contexts every connection runs TLS (:class:`~peerlab.realnet.tls.TlsSession`) between
the member's bytes and the socket's. The member is told of a connection at once and reads
nothing until the TLS handshake is over, so its handshake deadline and limits also hold a peer
that never finishes TLS.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import selectors
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from peerlab.linkmodel import LaneState, LinkModel
from peerlab.realnet.loop import EventLoop, LoopTimer, describe, log
from peerlab.realnet.tls import TlsFailure, TlsSession
from peerlab.tls import TlsContexts
from peerlab.transport import ConnectionHandler, Transport

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE

#: How early a write held back by its link model may leave: the selector waits in whole
#: milliseconds, rounded up, so a timer fires up to 1 ms late; aiming half of that early makes
#: writes leave on time on average rather than always late.
EARLY = 0.0005

#: Seconds a listener stops accepting after ``accept`` failed (out of file descriptors, say):
#: trying again at once would spin the loop on a listener that stays ready.
ACCEPT_RETRY_DELAY = 0.5


def parse_address(address: str, *, listening: bool = False) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:port"`` for IPv6) into a socket address; ValueError
    says why it is not one (a port to listen on may be 0: any free one)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"address {address!r} is not HOST:PORT")
    low = 0 if listening else 1
    if not low <= int(port) <= 65535:
        raise ValueError(f"address {address!r}: port {int(port)} is not in {low}..65535")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address, or ``localhost``) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def format_address(host: str, port: int) -> str:
    """The inverse of :func:`parse_address`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class TcpLimits:
    """Resource limits of one transport."""

    backlog: int = 128
    max_write_buffer: int = 4 << 20  # bytes queued for a peer that does not read
    connect_timeout: float = 5.0
    read_size: int = 256 << 10


class Policy:
    """Decides what happens to bytes between two hosts (used to emulate faults and links).

    The default lets everything through at once. ``TcpNetwork`` installs one that holds bytes
    back during a partition, drops them on a silent cut, and times them by the
    :class:`~peerlab.linkmodel.LinkModel` of their link, as the simulator does.
    """

    #: True for a policy that never holds, drops or delays anything, so the transport need not
    #: ask it about each frame it sends.
    passthrough: bool = True
    #: Where the link models' random delays (jitter, loss) are drawn from.
    rng: random.Random = random.Random(0)

    def note_socket(self, sockname: tuple, host: str | None) -> None:
        """A dialling socket of ``host`` got the local address ``sockname``."""

    def host_of_peer(self, peername: tuple) -> str | None:
        """Which in-process host dialled from ``peername``, if known."""
        return None

    def host_of_address(self, address: str) -> str | None:
        """Which in-process host listens at ``address``, if known."""
        return None

    def verdict(self, src: str | None, dst: str | None) -> str:
        """``"pass"``, ``"hold"`` (until released) or ``"drop"``."""
        return "pass"

    def link(self, src: str | None, dst: str | None) -> LinkModel | None:
        """The model of the link bytes from ``src`` to ``dst`` cross (None: let them go at
        once)."""
        return None


@dataclass(eq=False)
class TcpConn:
    """One open socket and its write state."""

    handle: int
    sock: socket.socket
    outbound: bool
    remote_address: str
    remote_host: str | None = None
    wbuf: bytearray = field(default_factory=bytearray)
    writing: bool = False
    closing: bool = False
    delayed: deque[tuple[float, bytes]] = field(default_factory=deque)
    lane: LaneState = field(default_factory=LaneState)  # the link model's state, our direction
    delay_timer: LoopTimer | None = None
    held: list[bytes] = field(default_factory=list)
    pending: list[bytes] = field(default_factory=list)  # sent during this pass of the loop
    reported: bool = False
    tls: TlsSession | None = None


class TcpTransport(Transport):
    """One member's listening socket and connections on an event loop."""

    def __init__(
        self,
        loop: EventLoop,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str | None = None,
        limits: TcpLimits | None = None,
        policy: Policy | None = None,
        source_host: str | None = None,
        tls: TlsContexts | None = None,
    ) -> None:
        self.loop = loop
        self.tls = tls
        self.name = name
        self.source_host = source_host  # dial from this address (identifies us to peers)
        self.limits = limits or TcpLimits()
        self.policy = policy or Policy()
        self.handler: ConnectionHandler | None = None
        self.conns: dict[int, TcpConn] = {}
        self._dialing: dict[int, tuple[socket.socket, str, LoopTimer]] = {}
        self._setup: dict[int, float] = {}  # dial -> the set-up delay its dialler still waits
        self._dirty: list[TcpConn] = []
        self._flush_scheduled = False
        self._next = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(self.limits.backlog)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        bound = self._listener.getsockname()
        self._address = format_address(bound[0], bound[1])
        self.closed = False
        self.paused = False
        self._backlog: list[Callable[[], None]] = []  # timers due while paused
        self._accept_retry: LoopTimer | None = None  # set while accepting waits out an error

    def start(self) -> None:
        """Start accepting (call on the loop thread, once ``handler`` is set)."""
        self._listen()

    def _listen(self) -> None:
        """Watch the listening socket, unless it is closed or accepting waits out an error."""
        if self._listener.fileno() >= 0 and self._accept_retry is None:
            self.loop.selector.register(self._listener, READ, self._on_accept)

    def pause(self) -> None:
        """Stop doing anything, as a stopped process would: every socket leaves the selector
        (bytes wait in the kernel) and timers that fall due wait for :meth:`resume`."""
        if self.paused or self.closed:
            return
        self.paused = True
        self._unregister(self._listener)
        for c in self.conns.values():
            self._unregister(c.sock)
        for sock, _, _ in self._dialing.values():
            self._unregister(sock)

    def resume(self) -> int:
        """Go on after :meth:`pause`: sockets back on the selector, then the timers that fell due
        meanwhile, in order; returns how many timers ran."""
        if not self.paused:
            return 0
        self.paused = False
        selector = self.loop.selector
        self._listen()
        for c in self.conns.values():
            events = READ | WRITE if c.writing else READ
            selector.register(c.sock, events, lambda mask, c=c: self._on_ready(c, mask))
        for key, (sock, _, _) in self._dialing.items():
            selector.register(sock, WRITE, lambda _m, key=key: self._on_dialled(key))
        backlog, self._backlog = self._backlog, []
        for fn in backlog:
            self._run(fn)
        return len(backlog)

    # --- Transport -----------------------------------------------------------------------

    @property
    def listen_address(self) -> str:
        return self._address

    def now(self) -> float:
        return self.loop.now()

    def caught_up(self) -> float:
        return self.loop.caught_up()

    def call_later(self, delay: float, fn: Callable[[], None]) -> LoopTimer:
        # checked again when it runs: while paused it waits, and may be cancelled meanwhile
        timer = self.loop.call_later(
            delay, lambda: self._run(lambda: None if timer.cancelled else fn())
        )
        return timer

    def _run(self, fn: Callable[[], None]) -> None:
        """Run a timer's callback: not at all once closed, later while paused."""
        if self.closed:
            return
        if self.paused:
            self._backlog.append(fn)
        else:
            fn()

    def connect(self, address: str) -> None:
        model = None
        if not self.policy.passthrough:
            model = self.policy.link(self.name, self.policy.host_of_address(address))
        setup = model.setup_delay(self.policy.rng) if model is not None else 0.0
        if setup > 0:  # the SYN crosses the link before the far end hears of the dial
            self.loop.call_later(setup, lambda: self._run(lambda: self._dial(address, setup)))
        else:
            self._dial(address, 0.0)

    def _dial(self, address: str, setup: float) -> None:
        """Dial ``address`` now; the dialler learns the outcome ``setup`` seconds after the
        socket's (the SYN-ACK's way back)."""
        try:
            target = parse_address(address)
            family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
        except (ValueError, OSError) as exc:
            reason = str(exc)
            self._later(lambda: self.handler.connect_failed(address, reason))
            return
        sock.setblocking(False)
        if self.source_host is not None:
            try:
                sock.bind((self.source_host, 0))
            except OSError as exc:
                sock.close()
                reason = f"cannot dial from {self.source_host}: {exc.strerror}"
                self._later(lambda: self.handler.connect_failed(address, reason))
                return
        err = sock.connect_ex(target)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            reason = errno.errorcode.get(err, str(err))
            self._later(lambda: self.handler.connect_failed(address, os_reason(err, reason)))
            return
        self.policy.note_socket(sock.getsockname(), self.name)
        key = self._new_handle()
        timer = self.loop.call_later(
            self.limits.connect_timeout,
            lambda: self._run(lambda: self._dial_failed(key, "connection timed out")),
        )
        self._dialing[key] = (sock, address, timer)
        if setup > 0:
            self._setup[key] = setup
        self.loop.selector.register(sock, WRITE, lambda _m: self._on_dialled(key))

    def send(self, conn, data: bytes) -> None:
        c = self.conns.get(conn)
        if c is None or c.closing or not data:
            return
        if not self.policy.passthrough and self._shaped(c, data):
            return
        # Frames sent during one pass of the loop leave in one write: coalescing saves a
        # system call per frame when a member relays a burst.
        if not c.pending:
            self._dirty.append(c)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_later(0, self._flush_pending)
        c.pending.append(data)

    def _shaped(self, c: TcpConn, data: bytes) -> bool:
        """Apply the policy to one outgoing write; True if it dropped, held or delayed it."""
        verdict = self.policy.verdict(self.name, c.remote_host)
        if verdict == "drop":
            return True
        if verdict == "hold" or c.held:
            c.held.append(bytes(data))
            return True
        return self._timed(c, data)

    def _timed(self, c: TcpConn, data: bytes) -> bool:
        """Hold one write back until its link model says it arrives; False if it may go now."""
        model = self.policy.link(self.name, c.remote_host)
        if model is None:
            if not c.delayed:
                return False
            due = c.delayed[-1][0]  # after what waits already: never reordered
        else:
            now = self.loop.now()
            due = model.arrival(c.lane, now, len(data), self.policy.rng)
            if due <= now and not c.delayed:
                return False
        self._delay(c, bytes(data), due)
        return True

    def _flush_pending(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for c in dirty:
            self._write_pending(c)

    def _write_pending(self, c: TcpConn) -> None:
        if c.pending:
            data = c.pending[0] if len(c.pending) == 1 else b"".join(c.pending)
            c.pending.clear()
            self._write(c, data)

    def close(self, conn) -> None:
        c = self.conns.get(conn)
        if c is None or c.closing:
            return
        self._write_pending(c)
        c.closing = True
        if not c.wbuf and not c.delayed and not c.held:
            self._teardown(c)
        elif not c.writing and c.wbuf:
            self._watch(c, READ | WRITE)

    # --- control used by the network -----------------------------------------------------

    def release_held(self) -> int:
        """Send bytes held back by the policy (after a partition heals); returns how many."""
        released = 0
        for c in list(self.conns.values()):
            held, c.held = c.held, []
            for data in held:
                released += len(data)
                if not self._timed(c, data):
                    self._write(c, data)
            if c.closing and not c.wbuf and not c.delayed:
                self._teardown(c)
        return released

    def connections_to(self, host: str) -> list[int]:
        """The handles of the open connections with the in-process host ``host``."""
        return [handle for handle, c in self.conns.items() if c.remote_host == host]

    def power_off(self) -> None:
        """Go dark as a switched-off machine: sockets stay open and silent, off the selector,
        and nothing more is done (no callback, no timer)."""
        self.pause()
        self.closed = True

    def abort(self) -> None:
        """Crash: reset every connection (RST) and stop listening; no callbacks follow."""
        for c in list(self.conns.values()):
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            except OSError:
                pass
            self._teardown(c)
        self.shutdown()

    def stop_listening(self) -> None:
        """Close the listening socket (connections already open go on)."""
        if self._accept_retry is not None:
            self._accept_retry.cancel()
            self._accept_retry = None
        if self._listener.fileno() >= 0:
            self._unregister(self._listener)
            self._listener.close()

    def shutdown(self) -> None:
        """Close the listener, every connection and every dial; no callbacks follow."""
        self.closed = True
        for c in list(self.conns.values()):
            self._teardown(c)
        for key in list(self._dialing):
            sock, _, timer = self._dialing.pop(key)
            timer.cancel()
            self._unregister(sock)
            sock.close()
        self.stop_listening()

    def drop_connection(self, conn, reason: str) -> None:
        """Close a connection for a reason outside the member and tell the member."""
        c = self.conns.get(conn)
        if c is not None:
            self._lost(c, reason)

    # --- internals -----------------------------------------------------------------------

    def _new_handle(self) -> int:
        self._next += 1
        return self._next

    def _later(self, fn: Callable[[], None]) -> None:
        self.loop.call_later(0, lambda: self._run(fn))

    def _adopt(self, sock: socket.socket, outbound: bool, remote: str, handle: int) -> TcpConn:
        """Take an open socket as a connection; OSError (and the socket closed) if it was reset
        before it could be set up."""
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = TcpConn(handle, sock, outbound, remote)
            if outbound:
                c.remote_host = self.policy.host_of_address(remote)
            else:
                c.remote_host = self.policy.host_of_peer(sock.getpeername())
        except OSError:
            sock.close()
            raise
        self.conns[handle] = c
        if not self.paused:
            self.loop.selector.register(sock, READ, lambda mask: self._on_ready(c, mask))
        if self.tls is not None:
            context = self.tls.client if outbound else self.tls.server
            c.tls = TlsSession(context, server_side=not outbound)
            self._send_records(c, c.tls.start())
        return c

    def _on_accept(self, _mask: int) -> None:
        if self.closed:
            return
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # nothing more to accept
            except ConnectionAbortedError:
                continue  # reset while it waited in the backlog: the next one
            except OSError as exc:
                self._accept_later(exc)
                return
            try:
                c = self._adopt(sock, False, format_address(addr[0], addr[1]), self._new_handle())
            except OSError:
                continue  # reset between accept and now: nobody to tell
            try:
                self.handler.connection_made(c.handle, False, c.remote_address)
            except Exception as exc:
                self._fatal_error(c, exc)

    def _accept_later(self, exc: OSError) -> None:
        """Stop accepting for :data:`ACCEPT_RETRY_DELAY` seconds after ``accept`` failed."""
        reason = os_reason(exc.errno, str(exc))
        log.warning("%s: accept failed, waiting %ss: %s", self.name, ACCEPT_RETRY_DELAY, reason)
        self._unregister(self._listener)
        self._accept_retry = self.loop.call_later(ACCEPT_RETRY_DELAY, self._accept_again)

    def _accept_again(self) -> None:
        self._accept_retry = None
        if not self.closed and not self.paused:
            self._listen()

    def _on_dialled(self, key: int) -> None:
        setup = self._setup.pop(key, 0.0)
        if setup > 0 and key in self._dialing:
            self._unregister(self._dialing[key][0])
            self.loop.call_later(setup, lambda: self._run(lambda: self._on_dialled(key)))
            return
        entry = self._dialing.pop(key, None)
        if entry is None:
            return
        sock, address, timer = entry
        timer.cancel()
        self._unregister(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self.handler.connect_failed(address, os_reason(err))
            return
        try:
            c = self._adopt(sock, True, address, key)
        except OSError as exc:
            self.handler.connect_failed(address, os_reason(exc.errno, str(exc)))
            return
        try:
            self.handler.connection_made(key, True, address)
        except Exception as exc:
            self._fatal_error(c, exc)

    def _dial_failed(self, key: int, reason: str) -> None:
        self._setup.pop(key, None)
        entry = self._dialing.pop(key, None)
        if entry is None:
            return
        sock, address, _ = entry
        self._unregister(sock)
        sock.close()
        self.handler.connect_failed(address, reason)

    def _on_ready(self, c: TcpConn, mask: int) -> None:
        if self.closed:
            return
        try:
            if mask & WRITE and c.handle in self.conns:
                self._flush(c)
            if mask & READ and c.handle in self.conns:
                self._read(c)
        except Exception as exc:
            self._fatal_error(c, exc)

    def _fatal_error(self, c: TcpConn, exc: Exception) -> None:
        """Close a connection whose handling raised, and tell the member why (asyncio's
        ``_fatal_error``): one connection's trouble is not the loop's."""
        what = f"connection with {c.remote_address}"
        self.loop.failed(what if self.name is None else f"member {self.name}, {what}", exc)
        self._lost(c, f"internal error: {describe(exc)}")

    def _read(self, c: TcpConn) -> None:
        try:
            data = c.sock.recv(self.limits.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(c, os_reason(exc.errno, str(exc)))
            return
        if not data:
            self._lost(c, "closed by peer")
            return
        if c.closing:
            return
        if not self.policy.passthrough and self.policy.verdict(c.remote_host, self.name) == "drop":
            return
        if c.tls is not None:
            try:
                data, answer = c.tls.receive(data)
            except TlsFailure as exc:
                self._send_records(c, exc.alert)
                self._lost(c, f"TLS: {exc}")
                return
            self._send_records(c, answer)
            if not data:
                return
        self.handler.data_received(c.handle, data)

    def _write(self, c: TcpConn, data: bytes) -> None:
        """Send the member's bytes (as TLS records on a TLS connection)."""
        if c.tls is not None:
            data = c.tls.seal(data)
        self._send_records(c, data)

    def _send_records(self, c: TcpConn, data: bytes) -> None:
        """Send bytes as they go on the wire: now, or buffered until the socket takes them."""
        if c.handle not in self.conns or not data:
            return
        if not c.wbuf:
            try:
                sent = c.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                reason = os_reason(exc.errno, str(exc))
                self._teardown(c)
                self._later(lambda: self._lost(c, reason))
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        c.wbuf += data
        if len(c.wbuf) > self.limits.max_write_buffer:
            reason = f"write buffer over {self.limits.max_write_buffer} bytes (peer is not reading)"
            self._teardown(c)
            self._later(lambda: self._lost(c, reason))
            return
        if not c.writing:
            self._watch(c, READ | WRITE)

    def _flush(self, c: TcpConn) -> None:
        try:
            sent = c.sock.send(c.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(c, os_reason(exc.errno, str(exc)))
            return
        del c.wbuf[:sent]
        if not c.wbuf:
            if c.closing and not c.delayed and not c.held:
                self._teardown(c)
            else:
                self._watch(c, READ)

    def _delay(self, c: TcpConn, data: bytes, due: float) -> None:
        """Write ``data`` at loop time ``due`` (after every write held back before it)."""
        if c.delayed:
            due = max(due, c.delayed[-1][0])
        c.delayed.append((due, data))
        if c.delay_timer is None:
            wait = due - EARLY - self.loop.now()
            c.delay_timer = self.loop.call_later(wait, lambda: self._release(c))

    def _release(self, c: TcpConn) -> None:
        c.delay_timer = None
        now = self.loop.now() + EARLY
        while c.delayed and c.delayed[0][0] <= now:
            self._write(c, c.delayed.popleft()[1])
        if c.delayed:
            c.delay_timer = self.loop.call_later(c.delayed[0][0] - now, lambda: self._release(c))
        elif c.closing and not c.wbuf and c.handle in self.conns:
            self._teardown(c)

    def _watch(self, c: TcpConn, events: int) -> None:
        c.writing = bool(events & WRITE)
        if self.paused:
            return  # resume registers it with these events
        try:
            self.loop.selector.modify(c.sock, events, lambda mask: self._on_ready(c, mask))
        except (KeyError, ValueError, OSError):
            pass

    def _lost(self, c: TcpConn, reason: str) -> None:
        self._teardown(c)
        if not c.closing and not c.reported and not self.closed:
            c.reported = True
            self.handler.connection_lost(c.handle, reason)

    def _teardown(self, c: TcpConn) -> None:
        if c.delay_timer is not None:
            c.delay_timer.cancel()
            c.delay_timer = None
        if self.conns.get(c.handle) is c:
            del self.conns[c.handle]
        if c.sock.fileno() >= 0:
            self._unregister(c.sock)
            c.sock.close()

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self.loop.selector.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass


def os_reason(err: int | None, fallback: str = "") -> str:
    """A readable reason for an OS error number."""
    if err:
        return f"{os.strerror(err).lower()} ({errno.errorcode.get(err, err)})"
    return fallback or "socket error"
