"""A process of real members (one or several), driven over a control channel on loopback.

Started by :class:`realnet.procnet.ProcessNetwork`; not meant to be run by hand. The worker
connects back to the parent and proves it is the worker the parent started (a token made from
the run's secret, which the parent passes in the environment, never on the command line, where
any local user can read it), then obeys commands and answers each, in order. Commands, answers
and trace events are msgpack maps, each behind its length (see :mod:`realnet.control`); trace
events stream back as they happen, stamped with the system-wide monotonic clock.

The members of one worker share its loop, its advert cache and its fault emulation, as the
members of a :class:`~peerlab.realnet.network.TcpNetwork` do; each listens and dials from its own
loopback address, so that workers tell members apart by address. When the network runs one
member per process, a member's crash, power-off and pause are signals to its process; else they
are emulated inside the worker (reset connections, silence, a paused transport).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import time
from typing import Any

from peerlab.identity import RunCredentials
from peerlab.linkmodel import LinkModel
from peerlab.linkstate import AdvertCache
from peerlab.member import Member, MemberConfig, member_class
from peerlab.realnet.control import FrameReader, encode
from peerlab.realnet.loop import EventLoop, describe
from peerlab.realnet.network import NetPolicy
from peerlab.realnet.transport import TcpTransport, parse_address
from peerlab.trace import TraceEvent, Tracer

#: The environment variable that carries the run's secret to a worker.
SECRET_ENV = "PEERLAB_WORKER_SECRET"


def worker_token(secret: str, worker: str, spawn: int) -> bytes:
    """What a worker process sends first on its control connection: proof that it knows the
    run's ``secret``, bound to the worker and the start of it it was started as. One line."""
    mac = hmac.new(secret.encode(), f"{worker}:{spawn}".encode(), hashlib.sha256)
    return mac.hexdigest().encode() + b"\n"


class Worker:
    """The worker's state: its loop, fault emulation, members and control socket."""

    def __init__(
        self,
        name: str,
        spawn: int,
        control: str,
        config: dict[str, Any],
        owners: dict[str, str],
        seed: int,
        member_class: type[Member] = Member,
        *,
        secret: str,
        security: str = "open",
        tls: bool = False,
    ) -> None:
        # every worker derives the run's network from its seed, as the parent's other
        # backends do (see peerlab.identity.RunCredentials)
        self.credentials = (
            RunCredentials(seed, time.time, simulated=False) if security == "signed" else None
        )
        self.tls = tls
        self.seed = seed
        self.config = MemberConfig(**config)
        self.member_class = member_class
        self.loop = EventLoop(f"worker-{name}")
        self.control = socket.create_connection(parse_address(control), timeout=10)
        self.control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.control.sendall(worker_token(secret, name, spawn))
        self.control.settimeout(None)
        self.inbox = FrameReader()
        self.policy = NetPolicy(f"{seed}:{name}:{spawn}")
        self.policy.ip_owner.update(owners)
        self.cache = AdvertCache(trust=self.credentials and self.credentials.trust)
        self.members: dict[str, Member] = {}
        self.transports: dict[str, TcpTransport] = {}
        # member -> its route computations and its database's claims when its table and view
        # were last sent
        self._sent: dict[str, tuple[tuple, list]] = {}
        # a SIGSTOP (pause, power-off) is a fault, not a stall: timers it held up are not late
        signal.signal(signal.SIGCONT, lambda *_: self.loop.forgive_lag())
        self.loop.selector.register(self.control, 1, self._on_control)  # EVENT_READ

    def _write(self, obj: Any) -> None:
        self.control.sendall(encode(obj))

    def _sink(self, member_id: str):
        t0 = self.loop.t0

        def event(e: TraceEvent) -> None:
            self._write({"ev": [e.time + t0, member_id, e.kind, e.fields]})

        return event

    def _on_control(self, _mask: int) -> None:
        data = self.control.recv(1 << 16)
        if not data:
            self.loop.request_stop()  # the parent went away
            return
        for request in self.inbox.feed(data):
            try:
                self._write({"reply": self._handle(request)})
            except Exception as exc:  # the command fails, not the worker: the parent is told
                self._write({"failed": f"{request.get('op')!r}: {describe(exc)}"})

    def _add(
        self,
        member_id: str,
        listen: str,
        incarnation: int,
        join: list[str],
        config: MemberConfig | None = None,
    ) -> None:
        """Start a life of ``member_id`` here (a restart replaces the transport of its last)."""
        old = self.transports.pop(member_id, None)
        if old is not None:
            old.shutdown()
        self.policy.dead.discard(member_id)
        host, port = parse_address(listen)
        credentials = self.credentials
        transport = TcpTransport(
            self.loop,
            host,
            port,
            name=member_id,
            policy=self.policy,
            source_host=host,
            tls=credentials.tls(member_id) if self.tls and credentials else None,
        )
        member = self.member_class.incarnate(
            member_id,
            transport,
            seed=self.seed,
            incarnation=incarnation,
            config=config or self.config,
            tracer=Tracer(keep=False, sink=self._sink(member_id)),
            cache=self.cache,
            identity=credentials and credentials.identity(member_id),
        )
        transport.handler = member
        transport.start()
        self.transports[member_id] = transport
        self.members[member_id] = member
        self._sent.pop(member_id, None)
        member.start(join)

    def _snapshot(self) -> dict[str, Any]:
        """Every member's counters; its table and view only if they changed since last sent."""
        out = {}
        for mid, m in self.members.items():
            snap: dict[str, Any] = {
                "neighbours": m.neighbours,
                "pending": m.routes_pending,
                "computations": m.counters.route_computations,
                "frames": dict(m.counters.frames_sent),
                "bytes": dict(m.counters.bytes_sent),
                "round_trips": m.round_trips(),
            }
            table = (m.counters.route_computations, m.routes_pending)
            sent = self._sent.get(mid)
            if sent is None or sent[0] != table or sent[1] != m.db.claimed:
                self._sent[mid] = (table, list(m.db.claimed))
                snap["routes"] = m.routing_table()
                snap["view"] = sorted(m.view())
            out[mid] = snap
        return out

    def _handle(self, req: dict[str, Any]) -> Any:
        op = req["op"]
        if op in WORKER_OPS:
            return WORKER_OPS[op](self, req)
        member = self.members.get(req.get("m", ""))
        if op not in MEMBER_OPS or member is None:
            return {"error": f"unknown op {op!r} or member {req.get('m')!r}"}
        return MEMBER_OPS[op](self, member, req)

    # --- commands to the worker ------------------------------------------------------------

    def _op_add(self, req: dict[str, Any]) -> None:
        config = req.get("config")
        config = None if config is None else MemberConfig(**config)
        self._add(req["m"], req["listen"], req["incarnation"], req["join"], config)

    def _op_owners(self, req: dict[str, Any]) -> None:
        self.policy.ip_owner.update(req["owners"])

    def _op_partition(self, req: dict[str, Any]) -> None:
        self.policy.groups = req["groups"]
        self.policy.one_way = req.get("one_way", False)

    def _op_heal(self, req: dict[str, Any]) -> int:
        self.policy.groups = {}
        return sum(t.release_held() for t in self.transports.values() if not t.closed)

    def _op_links(self, req: dict[str, Any]) -> None:
        for a, b, model in req["links"]:
            self.policy.links[frozenset((a, b))] = LinkModel.from_dict(model)
        if "default" in req:
            default = req["default"]
            self.policy.default = None if default is None else LinkModel.from_dict(default)

    def _op_snapshot(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._snapshot()

    def _op_lag(self, req: dict[str, Any]) -> list[float]:
        seconds, at = self.loop.take_lag()
        return [seconds, at + self.loop.t0]

    def _op_stop(self, req: dict[str, Any]) -> None:
        for m in self.members.values():
            m.stop()
        self.loop.request_stop()

    # --- commands to one of its members ----------------------------------------------------

    def _op_connect(self, m: Member, req: dict[str, Any]) -> None:
        m.connect(req["address"])

    def _op_send(self, m: Member, req: dict[str, Any]) -> str:
        return m.send(req["dst"], req["payload"], reliable=req.get("reliable", False))

    def _op_cut(self, m: Member, req: dict[str, Any]) -> int:
        self.policy.cuts.add(frozenset((m.id, req["peer"])))
        transport = self.transports[m.id]
        handles = transport.connections_to(req["peer"])
        if not req.get("silent"):
            for handle in handles:
                transport.drop_connection(handle, "link down")
        return len(handles)

    def _op_uncut(self, m: Member, req: dict[str, Any]) -> None:
        self.policy.cuts.discard(frozenset((m.id, req["peer"])))

    def _op_leave(self, m: Member, req: dict[str, Any]) -> None:
        del self.members[m.id]
        m.leave()
        transport = self.transports[m.id]
        transport.stop_listening()
        self.loop.call_later(1.0, transport.shutdown)  # what leave() sent has a second to go

    def _op_crash(self, m: Member, req: dict[str, Any]) -> None:
        del self.members[m.id]
        self.transports[m.id].abort()

    def _op_power_off(self, m: Member, req: dict[str, Any]) -> None:
        del self.members[m.id]
        self.policy.dead.add(m.id)
        self.transports[m.id].power_off()

    def _op_pause(self, m: Member, req: dict[str, Any]) -> None:
        self.transports[m.id].pause()

    def _op_resume(self, m: Member, req: dict[str, Any]) -> int:
        return self.transports[m.id].resume()

    def run(self) -> None:
        """Serve until told to stop or the parent disconnects."""
        try:
            self.loop.run_forever()
            # what the members said last (a leave's Bye, held for the link's emulated latency)
            # still goes out: connections close once flushed, for a second at most
            # (a powered-off or paused member's sockets never flush: not waited for)
            live = [t for t in self.transports.values() if not (t.closed or t.paused)]
            deadline = time.monotonic() + 1.0
            while any(t.conns for t in live) and time.monotonic() < deadline:
                self.loop.run_once(0.05)
        finally:
            for t in self.transports.values():
                t.shutdown()
            self.control.close()
            self.loop.selector.close()


WORKER_OPS = {
    "add": Worker._op_add,
    "owners": Worker._op_owners,
    "partition": Worker._op_partition,
    "heal": Worker._op_heal,
    "links": Worker._op_links,
    "snapshot": Worker._op_snapshot,
    "lag": Worker._op_lag,
    "stop": Worker._op_stop,
}
MEMBER_OPS = {
    "connect": Worker._op_connect,
    "send": Worker._op_send,
    "cut": Worker._op_cut,
    "uncut": Worker._op_uncut,
    "leave": Worker._op_leave,
    "crash": Worker._op_crash,
    "power_off": Worker._op_power_off,
    "pause": Worker._op_pause,
    "resume": Worker._op_resume,
}


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux), even while it is
    stopped; a parent already gone is found when the control channel cannot be reached."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m peerlab.realnet.worker --name W --control IP:PORT ...``."""
    die_with_parent()
    p = argparse.ArgumentParser(prog="python -m peerlab.realnet.worker")
    p.add_argument("--name", required=True)
    p.add_argument("--spawn", type=int, default=1)
    p.add_argument("--control", required=True)
    p.add_argument("--config", default="{}")
    p.add_argument("--owners", default="{}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--member-class", default="peerlab.member:Member")
    p.add_argument("--security", choices=("open", "signed"), default="open")
    p.add_argument("--tls", action="store_true")
    args = p.parse_args(argv)
    secret = os.environ.pop(SECRET_ENV, None)  # not passed on to anything this process starts
    if not secret:
        p.error(f"no run secret in ${SECRET_ENV}: workers are started by ProcessNetwork")
    Worker(
        args.name,
        args.spawn,
        args.control,
        json.loads(args.config),
        json.loads(args.owners),
        args.seed,
        member_class(args.member_class),
        secret=secret,
        security=args.security,
        tls=args.tls,
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
