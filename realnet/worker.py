"""One member in its own OS process, driven over a JSON-lines control channel on loopback.

Started by :class:`realnet.procnet.ProcessNetwork`; not meant to be run by hand. The worker
connects back to the parent and proves it is the worker the parent started (a token made from
the run's secret, which the parent passes in the environment, never on the command line, where
any local user can read it), then obeys one command per line and answers each with a reply line;
trace events stream back as they happen, stamped with the system-wide monotonic clock.
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
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.network import NetPolicy
from peerlab.realnet.transport import TcpTransport, parse_address
from peerlab.trace import TraceEvent, Tracer

#: The environment variable that carries the run's secret to a worker.
SECRET_ENV = "PEERLAB_WORKER_SECRET"


def worker_token(secret: str, member_id: str, incarnation: int) -> bytes:
    """What the worker for one life of a member sends first on its control connection: proof
    that it knows the run's ``secret``, bound to the life it was started for. One line."""
    mac = hmac.new(secret.encode(), f"{member_id}:{incarnation}".encode(), hashlib.sha256)
    return mac.hexdigest().encode() + b"\n"


class Worker:
    """The worker's state: its loop, transport, member and control socket."""

    def __init__(
        self,
        member_id: str,
        listen: str,
        control: str,
        config: dict[str, Any],
        owners: dict[str, str],
        seed: int,
        incarnation: int,
        member_class: type[Member] = Member,
        *,
        secret: str,
        security: str = "open",
        tls: bool = False,
    ) -> None:
        # every worker derives the run's network from its seed, as the parent's other
        # backends do (see peerlab.identity.RunCredentials)
        credentials = (
            RunCredentials(seed, time.time, simulated=False) if security == "signed" else None
        )
        self.loop = EventLoop(f"worker-{member_id}")
        self.control = socket.create_connection(parse_address(control), timeout=10)
        self.control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.control.sendall(worker_token(secret, member_id, incarnation))
        self.inbox = b""
        self.policy = NetPolicy(f"{seed}:{member_id}:{incarnation}")
        self.policy.ip_owner.update(owners)
        host, port = parse_address(listen)
        self.transport = TcpTransport(
            self.loop,
            host,
            port,
            name=member_id,
            policy=self.policy,
            source_host=host,
            tls=credentials.tls(member_id) if tls and credentials else None,
        )
        self.member = member_class.incarnate(
            member_id,
            self.transport,
            seed=seed,
            incarnation=incarnation,
            config=MemberConfig(**config),
            tracer=Tracer(keep=False, sink=self._event),
            cache=AdvertCache(trust=credentials and credentials.trust),
            identity=credentials and credentials.identity(member_id),
        )
        self.transport.handler = self.member
        self.transport.start()
        # a SIGSTOP (pause, power-off) is a fault, not a stall: timers it held up are not late
        signal.signal(signal.SIGCONT, lambda *_: self.loop.forgive_lag())
        self.loop.selector.register(self.control, 1, self._on_control)  # EVENT_READ
        self._write({"ready": member_id, "address": self.transport.listen_address})

    def _write(self, obj: dict[str, Any]) -> None:
        self.control.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def _event(self, event: TraceEvent) -> None:
        self._write({"ev": [event.time + self.loop.t0, event.kind, event.fields]})

    def _on_control(self, _mask: int) -> None:
        data = self.control.recv(1 << 16)
        if not data:
            self.loop.request_stop()  # the parent went away
            return
        self.inbox += data
        while b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            request = json.loads(line)
            self._write({"reply": self._handle(request)})

    def _handle(self, req: dict[str, Any]) -> Any:
        op, m = req["op"], self.member
        if op == "start":
            m.start(req.get("join", []))
        elif op == "connect":
            m.connect(req["address"])
        elif op == "send":
            return m.send(
                req["dst"], req["payload"].encode("latin-1"), reliable=req.get("reliable", False)
            )
        elif op == "cut":
            self.policy.cuts.add(frozenset((m.id, req["peer"])))
            handles = self.transport.connections_to(req["peer"])
            if not req.get("silent"):
                for handle in handles:
                    self.transport.drop_connection(handle, "link down")
            return len(handles)
        elif op == "owners":
            self.policy.ip_owner.update(req["owners"])
        elif op == "uncut":
            self.policy.cuts.discard(frozenset((m.id, req["peer"])))
        elif op == "partition":
            self.policy.groups = req["groups"]
            self.policy.one_way = req.get("one_way", False)
        elif op == "heal":
            self.policy.groups = {}
            return self.transport.release_held()
        elif op == "links":
            for peer, model in req["links"].items():
                self.policy.links[frozenset((m.id, peer))] = LinkModel.from_dict(model)
            if "default" in req:
                default = req["default"]
                self.policy.default = None if default is None else LinkModel.from_dict(default)
        elif op == "snapshot":
            return {
                "routes": m.routing_table(),
                "neighbours": m.neighbours,
                "pending": m.routes_pending,
                "computations": m.counters.route_computations,
                "view": sorted(m.view()),
                "frames": dict(m.counters.frames_sent),
                "bytes": dict(m.counters.bytes_sent),
                "round_trips": m.round_trips(),
            }
        elif op == "lag":
            seconds, at = self.loop.take_lag()
            return [seconds, at + self.loop.t0]
        elif op == "leave":
            m.leave()
        elif op == "stop":
            m.stop()
            self.loop.request_stop()
        else:
            return {"error": f"unknown op {op!r}"}
        return None

    def run(self) -> None:
        """Serve until told to stop or the parent disconnects."""
        try:
            self.loop.run_forever()
            # what the member said last (a leave's Bye, held for the link's emulated latency)
            # still goes out: connections close once flushed, for a second at most
            deadline = time.monotonic() + 1.0
            while self.transport.conns and time.monotonic() < deadline:
                self.loop.run_once(0.05)
        finally:
            self.transport.shutdown()
            self.control.close()
            self.loop.selector.close()


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux), even while it is
    stopped; a parent already gone is found when the control channel cannot be reached."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m peerlab.realnet.worker --id A --listen IP:PORT --control ...``."""
    die_with_parent()
    p = argparse.ArgumentParser(prog="python -m peerlab.realnet.worker")
    p.add_argument("--id", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--config", default="{}")
    p.add_argument("--owners", default="{}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--incarnation", type=int, default=1)
    p.add_argument("--member-class", default="peerlab.member:Member")
    p.add_argument("--security", choices=("open", "signed"), default="open")
    p.add_argument("--tls", action="store_true")
    args = p.parse_args(argv)
    secret = os.environ.pop(SECRET_ENV, None)  # not passed on to anything this process starts
    if not secret:
        p.error(f"no run secret in ${SECRET_ENV}: workers are started by ProcessNetwork")
    Worker(
        args.id,
        args.listen,
        args.control,
        json.loads(args.config),
        json.loads(args.owners),
        args.seed,
        args.incarnation,
        member_class(args.member_class),
        secret=secret,
        security=args.security,
        tls=args.tls,
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
