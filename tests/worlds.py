"""Backends under one small interface, so one conformance suite runs against every world.

A world makes transports whose callbacks go to a :class:`Recorder`, runs its clock until a
condition holds (with a deadline), and runs code in the transport's own context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from memnet import MemoryNetwork


@dataclass
class Recorder:
    """A ConnectionHandler that records everything it is told."""

    made: list[tuple[object, bool, str]] = field(default_factory=list)
    received: dict[object, bytearray] = field(default_factory=dict)
    chunks: dict[object, list[bytes]] = field(default_factory=dict)  # as handed over, one by one
    lost: dict[object, str] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    order: list[tuple[str, object]] = field(default_factory=list)

    def connection_made(self, conn, outbound, remote_address):
        self.made.append((conn, outbound, remote_address))
        self.received[conn] = bytearray()
        self.chunks[conn] = []
        self.order.append(("made", conn))

    def data_received(self, conn, data):
        assert conn not in self.lost, "data after connection_lost"
        self.received[conn] += data
        self.chunks[conn].append(data)
        self.order.append(("data", conn))

    def connection_lost(self, conn, reason):
        assert conn not in self.lost, "connection_lost twice"
        self.lost[conn] = reason
        self.order.append(("lost", conn))

    def connect_failed(self, address, reason):
        self.failed.append((address, reason))

    def conns(self, outbound: bool) -> list:
        return [c for c, o, _ in self.made if o == outbound]


class MemoryWorld:
    name = "memory"

    def __init__(self) -> None:
        self.net = MemoryNetwork(11)

    def endpoint(self, name: str):
        t = self.net.transport(f"mem:{name}")
        t.handler = Recorder()
        return t, t.handler

    def nowhere(self) -> str:
        return "mem:nobody-listens-here"

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return self.net.run_until(predicate, timeout)

    def call(self, transport, fn: Callable[[], object]) -> object:
        return fn()

    def close(self) -> None:
        pass


class SimWorld:
    name = "sim"

    def __init__(self, net=None) -> None:
        from peerlab.sim import SimNetwork

        self.net = net if net is not None else SimNetwork(11, connect_timeout=2.0)

    def endpoint(self, name: str):
        from peerlab.sim.transport import SimTransport

        t = SimTransport(self.net, name, self.net.address_of(name))
        t.handler = Recorder()
        self.net.transports[name] = t
        return t, t.handler

    def nowhere(self) -> str:
        return self.net.address_of("nobody")

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return self.net.run_until(predicate, timeout, check_every=0.001)

    def call(self, transport, fn: Callable[[], object]) -> object:
        return fn()

    def close(self) -> None:
        pass


class RealWorld:
    name = "real"

    def __init__(self) -> None:
        from peerlab.realnet import EventLoop

        self.loop = EventLoop("conformance").start()
        self.transports = []

    def endpoint(self, name: str):
        from peerlab.realnet import TcpTransport

        def make():
            t = TcpTransport(self.loop, "127.0.0.1", 0, name=name)
            t.handler = Recorder()
            t.start()
            return t

        t = self.loop.call(make)
        self.transports.append(t)
        return t, t.handler

    def nowhere(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"127.0.0.1:{port}"

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while not self.loop.call(predicate):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def call(self, transport, fn: Callable[[], object]) -> object:
        return self.loop.call(fn)

    def close(self) -> None:
        self.loop.call(lambda: [t.shutdown() for t in self.transports])
        self.loop.stop()
        assert self.loop.failures == 0


WORLDS: dict[str, type] = {"memory": MemoryWorld, "sim": SimWorld, "real": RealWorld}
