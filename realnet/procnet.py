"""ProcessNetwork: members in OS processes of their own (no GIL shared between processes).

Each worker process runs ``members_per_process`` members on one loop (one by default on small
networks; see :func:`members_per_process_for`). The parent keeps one control connection per
worker on loopback (length-prefixed msgpack, :mod:`realnet.control`), and takes as a worker's
only the connection that proves it knows the run's secret (any local process can connect to the
control port; only the parent's children are given the secret). Each member listens and dials
from its own loopback address (127.0.0.2, 127.0.0.3, ...), so every process can tell which
member a connection comes from and emulate cuts and partitions as the in-process network does.
With one member per process, a crash is a real ``SIGKILL`` and a power-off or pause ``SIGSTOP``
(the sockets stay open and silent until keepalive gives up on them); with several, all three
are emulated in the member's process, as the in-process network does. The parent asks a worker
for a member's table and view only when they changed (the worker keeps what it last sent).

Workers die with the network: :meth:`ProcessNetwork.close` reaps every one (a stopped one is
continued, then killed), and each worker runs in a process group of its own, so that a Ctrl-C
at the terminal reaches only the parent, which cleans up. A parent killed outright takes its
workers with it (``PR_SET_PDEATHSIG``, set by the worker and its fork server), stopped ones
included.

Where the worker processes run is a :mod:`~peerlab.realnet.placement`: this machine by default,
or Dask workers (``placement=DaskPlacement(client)``, ``peerlab run --backend proc --scheduler
ADDRESS``), each worker process a long task pinned to one Dask worker.
"""

from __future__ import annotations

import hmac
import json
import math
import queue
import secrets
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from peerlab.console import log
from peerlab.faults import FaultReport
from peerlab.linkmodel import LinkModel
from peerlab.member import Member, MemberConfig, running_member, take_running
from peerlab.network import LoopLag, set_scenario_links
from peerlab.realnet.control import FrameReader, encode
from peerlab.realnet.placement import Child, DaskPlacement, LocalPlacement
from peerlab.realnet.transport import format_address
from peerlab.realnet.wallclock import WallClock, stretched
from peerlab.realnet.worker import SECRET_ENV, worker_token
from peerlab.routing import Route
from peerlab.trace import Tracer

if TYPE_CHECKING:
    from peerlab.scenario import Scenario

T = TypeVar("T")

#: The most worker processes a scenario is spread over by default (measured on 2 cores: see
#: benchmarks/README.md, "Scale"); past it members share processes.
MAX_WORKERS = 16


def members_per_process_for(members: int, max_workers: int = MAX_WORKERS) -> int:
    """The default number of members one worker process runs: one each, up to
    ``max_workers`` processes; beyond, as few per process as keeps to that many."""
    return max(1, math.ceil(members / max_workers))


@dataclass
class _Counters:
    frames_sent: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    route_computations: int = 0


class MemberProxy:
    """The parent's picture of a worker's member, refreshed by :meth:`ProcessNetwork.refresh`."""

    def __init__(self, net: ProcessNetwork, member_id: str) -> None:
        self.net = net
        self.id = member_id
        self.table: dict[str, dict[str, Any]] = {}
        self.neighbours: list[str] = []
        self.routes_pending = False
        self.counters = _Counters()
        self._view: list[tuple[str, str]] = []
        self._round_trips: dict[str, float] = {}

    def update(self, snap: dict[str, Any]) -> None:
        """Take in a worker's snapshot of the member (table and view only when they changed)."""
        if "routes" in snap:
            self.table = snap["routes"]
            self._view = [tuple(e) for e in snap["view"]]
        self.neighbours = snap["neighbours"]
        self.routes_pending = snap["pending"]
        self.counters = _Counters(snap["frames"], snap["bytes"], snap["computations"])
        self._round_trips = snap["round_trips"]

    def round_trips(self) -> dict[str, float]:
        """The member's shortest Ping round trip per neighbour, as of the last refresh."""
        return dict(self._round_trips)

    @property
    def routes(self) -> dict[str, Route]:
        """The member's table as of the last refresh."""
        return {d: Route(r["next_hop"], r["hops"]) for d, r in self.table.items()}

    def routing_table(self) -> dict[str, dict[str, Any]]:
        """The member's table as JSON-ready dicts."""
        return dict(sorted(self.table.items()))

    def view(self) -> set[tuple[str, str]]:
        """The links the member believed in at the last refresh."""
        return set(self._view)

    def send(self, dst: str, payload: bytes = b"", *, reliable: bool = False) -> str:
        """Have the member send a message; returns its id."""
        return self.net.request(
            self.id, {"op": "send", "dst": dst, "reliable": reliable, "payload": payload}
        )


class _Worker:
    """The parent's end of one worker process: its control connection and a thread reading it."""

    def __init__(
        self,
        name: str,
        proc: Child,
        sock: socket.socket,
        tracer: Tracer,
        lock: threading.Lock,
    ) -> None:
        self.name = name
        self.proc = proc
        self.sock = sock
        self.members: set[str] = set()  # the members running in it
        self.owed = 0  # commands posted and not yet answered
        self.replies: queue.Queue[Any] = queue.Queue()
        self.tracer = tracer
        self.lock = lock
        self.reader = threading.Thread(target=self._read, name=f"ctl-{name}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        frames = FrameReader()
        try:
            while chunk := self.sock.recv(1 << 16):
                for msg in frames.feed(chunk):
                    if "ev" in msg:
                        t, member, kind, fields = msg["ev"]
                        with self.lock:
                            self.tracer.emit(t, member, kind, **fields)
                    elif "reply" in msg:
                        self.replies.put(msg["reply"])
                    elif "failed" in msg:
                        self.replies.put(RuntimeError(f"worker {self.name}: {msg['failed']}"))
        except OSError:
            pass
        self.replies.put(ConnectionError(f"worker {self.name} closed its control channel"))

    def request(self, req: dict[str, Any], timeout: float) -> Any:
        self.post(req)
        return self.answer(timeout)

    def post(self, req: dict[str, Any]) -> None:
        """Send a command without waiting for its answer (see :meth:`answer`)."""
        self.sock.sendall(encode(req))
        self.owed += 1

    def answer(self, timeout: float) -> Any:
        """The answer to the latest command posted; the answers to those posted before it,
        which nobody waited for, are taken and dropped."""
        while True:
            reply = self.replies.get(timeout=timeout)
            self.owed -= 1
            if isinstance(reply, ConnectionError):
                raise reply
            if not self.owed:
                if isinstance(reply, Exception):
                    raise reply
                return reply
            if isinstance(reply, Exception):  # a command nobody waited for failed
                log.warning("%s", reply)

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            else:
                try:
                    self.request({"op": "stop"}, 5)
                except (OSError, ConnectionError, queue.Empty):
                    self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(10)


class ProcessNetwork(WallClock):
    """Real members in worker processes of their own: a :class:`~peerlab.network.Network`
    whose scenario time is the wall clock (stretched by ``time_scale``). Members are put in
    processes ``members_per_process`` at a time, in the order they are first added."""

    poll_interval = 0.05

    def __init__(
        self,
        seed: int = 0,
        *,
        config: MemberConfig | None = None,
        tracer: Tracer | None = None,
        spawn_timeout: float = 20.0,
        member_class: type[Member] = Member,
        time_scale: float = 1.0,
        security: str = "open",
        tls: bool = False,
        placement: LocalPlacement | DaskPlacement | None = None,
        members_per_process: int = 1,
    ) -> None:
        if tls and security != "signed":
            raise ValueError("TLS needs secure mode (security='signed')")
        if members_per_process < 1:
            raise ValueError(f"members_per_process must be at least 1, got {members_per_process}")
        if members_per_process > 1 and placement is not None and placement.remote:
            raise ValueError(
                "members sharing a process on another host would share its address, and "
                "members are told apart by address: use members_per_process=1"
            )
        self.seed = seed
        self.security = security
        self.tls = tls
        self.placement = placement or LocalPlacement()
        self.members_per_process = members_per_process
        self.time_scale = time_scale
        self.member_class = f"{member_class.__module__}:{member_class.__qualname__}"
        self.config = stretched(config or MemberConfig(), time_scale)
        self.tracer = tracer if tracer is not None else Tracer()
        self.spawn_timeout = spawn_timeout
        self.lock = threading.Lock()
        self.server = socket.create_server((self.placement.control_host, 0))
        self.server.setblocking(False)
        self._secret = secrets.token_hex(32)
        self.control_address = format_address(*self.server.getsockname()[:2])
        self.workers: dict[str, _Worker] = {}  # running member -> the worker it runs in
        self.members: dict[str, MemberProxy] = {}
        self.addresses: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self.links: dict[frozenset[str], LinkModel] = {}
        self.defaults: LinkModel | None = None
        self.incarnations: dict[str, int] = {}
        self._group: dict[str, str] = {}  # member -> the name of the worker it runs in
        self._running: dict[str, _Worker] = {}  # worker name -> worker process running
        self._spawns: dict[str, int] = {}  # worker name -> processes started for it
        self._stopped: dict[str, _Worker] = {}  # member powered off with its process
        self._paused: dict[str, list[dict[str, Any]]] = {}  # stopped member -> what it missed
        self._groups: dict[str, int] = {}
        self.faults: list[FaultReport] = []
        self.start_clock()

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        *,
        config: MemberConfig,
        tracer: Tracer,
        time_scale: float = 1.0,
        member_class: type[Member] | None = None,
        placement: LocalPlacement | DaskPlacement | None = None,
        members_per_process: int | None = None,
    ) -> ProcessNetwork:
        """A network for a scenario, its links' models applied, its members' processes
        where ``placement`` puts them (this machine by default), ``members_per_process`` in
        each (by default as :func:`members_per_process_for` has it for the scenario's size; one
        on workers of other hosts)."""
        if members_per_process is None:
            remote = placement is not None and placement.remote
            members_per_process = 1 if remote else members_per_process_for(len(scenario.everyone))
        net = cls(
            scenario.seed,
            config=config,
            tracer=tracer,
            member_class=member_class or Member,
            time_scale=time_scale,
            security=scenario.security,
            tls=scenario.tls,
            placement=placement,
            members_per_process=members_per_process,
        )
        net.defaults = LinkModel.of(scenario.defaults)
        set_scenario_links(net, scenario)
        return net

    # --- plumbing ------------------------------------------------------------------------

    def member_clock(self) -> float:
        """The clock workers stamp their trace events with (system-wide monotonic)."""
        return time.monotonic()

    @property
    def _signals(self) -> bool:
        """Whether a member's faults are its process's signals (one member per process)."""
        return self.members_per_process == 1

    def request(self, member_id: str, req: dict[str, Any], timeout: float = 10.0) -> Any:
        """Send one command to a member (in its worker) and return the reply."""
        return self.workers[member_id].request({**req, "m": member_id}, timeout)

    def _answering(self) -> list[_Worker]:
        """The running workers that can answer now (a stopped process answers nothing)."""
        return [w for w in self._running.values() if not w.members & self._paused.keys()]

    def _broadcast(self, req: dict[str, Any]) -> list[Any]:
        """Send a command to every running worker; returns the replies (a stopped worker gets
        the command when it resumes)."""
        for mid in self._paused:
            self._paused[mid].append(req)
        return [answer for _, answer in self._ask(req)]

    def _ask(self, req: dict[str, Any]) -> list[tuple[_Worker, Any]]:
        """Ask every worker that can answer now, all before awaiting any answer (nothing is
        kept for a stopped one); returns ``(worker, answer)`` pairs."""
        answering = self._answering()
        for worker in answering:
            worker.post(req)
        return [(worker, worker.answer(10.0)) for worker in answering]

    def refresh(self) -> None:
        """Update every live member's proxy (a stopped process cannot answer: its members'
        last snapshots stand). Every worker is asked before any answer is awaited."""
        for _, snapshots in self._ask({"op": "snapshot"}):
            for mid, snap in snapshots.items():
                if mid in self.members:
                    self.members[mid].update(snap)

    def send_burst(self, sends: Sequence[tuple[str, str, bytes, bool]]) -> None:
        """Have each running ``(src, dst, payload, reliable)`` send: every command goes out
        before any answer is awaited, so the workers send at once, not one round trip apart
        (a stopped member sends when it resumes)."""
        waiting = []
        for src, dst, payload, reliable in sends:
            req = {"op": "send", "dst": dst, "reliable": reliable, "payload": payload, "m": src}
            if src in self._paused:
                self._paused[src].append(req)
            else:
                self.workers[src].post(req)
                waiting.append(self.workers[src])
        for worker in dict.fromkeys(waiting):
            worker.answer(10.0)

    def start_clock(self) -> None:
        """Make now scenario time 0; the workers' stalls count from now."""
        self._ask({"op": "lag"})
        super().start_clock()

    def loop_lag(self) -> LoopLag:
        """The worst stall of any running worker's loop since the clock started (a stopped
        worker answers when it resumes: its stall then is the pause, not counted)."""
        worst = LoopLag()
        for worker, (seconds, at) in self._ask({"op": "lag"}):
            if seconds / self.time_scale > worst.seconds and worker.members:
                whose = min(worker.members)  # the loop of every member in its process
                worst = LoopLag(seconds / self.time_scale, whose, round(self.scenario_time(at), 6))
        return worst

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Refresh the proxies, then evaluate ``fn`` against them."""
        self.refresh()
        return fn()

    def close(self) -> None:
        """Stop every worker process, reap it, close every socket and thread; a stopped
        worker (powered off or paused) cannot answer, so it is continued and killed."""
        for w in self._running.values():
            w.close(kill=bool(w.members & self._paused.keys()))
        for w in self._stopped.values():
            w.close(kill=True)
        self._running.clear()
        self.workers.clear()
        self._stopped.clear()
        self.members.clear()
        self.server.close()
        self.placement.close()

    def __enter__(self) -> ProcessNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building ------------------------------------------------------------------------

    def address_of(self, member_id: str) -> str:
        """A member's listen address."""
        return self.addresses[member_id]

    def set_link(self, a: str, b: str, model: LinkModel) -> None:
        """Use ``model`` between ``a`` and ``b`` from now on, on the connections they hold
        and on those they open later (each end's worker times the bytes it sends)."""
        self.links[frozenset((a, b))] = model
        self._broadcast({"op": "links", "links": [[a, b, self._wire(model)]]})

    def _wire(self, model: LinkModel) -> dict[str, Any]:
        """A link model as a worker runs it: on the wall clock."""
        return model.stretched(self.time_scale).to_dict()

    def link_model(self, a: str, b: str) -> LinkModel | None:
        """The model used between ``a`` and ``b``."""
        return self.links.get(frozenset((a, b)), self.defaults)

    def add_member(
        self, member_id: str, *, join: Iterable[str] = (), config: MemberConfig | None = None
    ) -> MemberProxy:
        """Start a life of ``member_id`` in its worker process (started if not running),
        dialling ``join``."""
        if member_id in self.members:
            raise ValueError(f"member {member_id!r} already exists")
        if member_id not in self.addresses:
            i = len(self.addresses)
            group = self._group[member_id] = f"w{i // self.members_per_process}"
            # 127.0.0.2 onwards (127/8 is all loopback), unless it runs on another host
            ip = self.placement.host_for(group) or f"127.0.{i // 250}.{i % 250 + 2}"
            port = self.placement.free_port(group, ip)
            self.addresses[member_id] = format_address(ip, port)
            self.owners[ip] = member_id
            self._broadcast({"op": "owners", "owners": {ip: member_id}})
        group = self._group[member_id]
        worker = self._running.get(group) or self._spawn(group)
        incarnation = self.incarnations.get(member_id, 0) + 1
        self.incarnations[member_id] = incarnation
        worker.members.add(member_id)
        self.workers[member_id] = worker
        proxy = MemberProxy(self, member_id)
        self.members[member_id] = proxy
        self.request(
            member_id,
            {
                "op": "add",
                "listen": self.addresses[member_id],
                "incarnation": incarnation,
                "join": [self.addresses[j] for j in join],
                "config": None if config is None else asdict(config),
            },
        )
        return proxy

    def _spawn(self, group: str) -> _Worker:
        """Start the worker process ``group`` and give it the links' models."""
        spawn = self._spawns[group] = self._spawns.get(group, 0) + 1
        argv = [
            "--name",
            group,
            "--spawn",
            str(spawn),
            "--control",
            self.control_address,
            "--config",
            json.dumps(asdict(self.config)),
            "--owners",
            json.dumps(self.owners),
            "--seed",
            str(self.seed),
            "--member-class",
            self.member_class,
            "--security",
            self.security,
            *(["--tls"] if self.tls else []),
        ]
        proc = self.placement.start(group, argv, {SECRET_ENV: self._secret})
        log.debug("worker %s started on %s", group, self.placement.describe(group))
        try:
            sock = self._accept_worker(worker_token(self._secret, group, spawn), proc)
        except RuntimeError as exc:
            proc.kill()
            proc.wait(10)
            raise RuntimeError(f"worker {group!r} {exc}") from None
        worker = self._running[group] = _Worker(group, proc, sock, self.tracer, self.lock)
        links = [[*sorted(pair), self._wire(model)] for pair, model in self.links.items()]
        default = None if self.defaults is None else self._wire(self.defaults)
        worker.request({"op": "links", "links": links, "default": default}, 10.0)
        return worker

    def _accept_worker(self, token: bytes, proc: Child) -> socket.socket:
        """The control connection of the worker just started: the first to send ``token``.
        Whatever else connects meanwhile is closed unanswered; RuntimeError if the worker
        exits, or does not call back within ``spawn_timeout``."""
        deadline = time.monotonic() + self.spawn_timeout
        heard: dict[socket.socket, bytes] = {}  # connections yet to send a whole token
        with selectors.DefaultSelector() as selector:
            selector.register(self.server, selectors.EVENT_READ)
            try:
                while proc.poll() is None and (left := deadline - time.monotonic()) > 0:
                    for key, _ in selector.select(min(left, 0.1)):
                        if key.fileobj is self.server:
                            try:
                                sock, _ = self.server.accept()
                            except BlockingIOError:
                                continue
                            sock.setblocking(False)
                            heard[sock] = b""
                            selector.register(sock, selectors.EVENT_READ)
                            continue
                        sock = key.fileobj
                        try:
                            chunk = sock.recv(len(token) - len(heard[sock]))
                        except BlockingIOError:
                            continue
                        except OSError:
                            chunk = b""
                        line = heard[sock] + chunk
                        if chunk and len(line) < len(token):
                            heard[sock] = line
                            continue
                        selector.unregister(sock)
                        del heard[sock]
                        if hmac.compare_digest(line, token):
                            sock.setblocking(True)
                            return sock
                        log.warning("control port: refused a connection that is not the worker")
                        sock.close()
            finally:
                for sock in heard:
                    sock.close()
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before calling back")
        raise RuntimeError(f"did not call back within {self.spawn_timeout}s")

    def connect(self, a: str, b: str) -> None:
        """Have member ``a`` dial member ``b`` (without waiting: a cold start posts every
        dial before any worker, busy flooding, has answered one)."""
        self.workers[a].post({"op": "connect", "address": self.addresses[b], "m": a})

    # --- faults --------------------------------------------------------------------------

    def _report(self, kind: str, target: str) -> FaultReport:
        report = FaultReport(kind, round(self.now, 6), target)
        self.faults.append(report)
        return report

    def link_down(self, a: str, b: str, *, silent: bool = False) -> FaultReport:
        """Cut the path between a and b: closed (both told) or silent."""
        report = self._report("link_cut" if silent else "link_down", f"{a}-{b}")
        for x, y in ((a, b), (b, a)):
            if x in self.members:
                cut = self.request(x, {"op": "cut", "peer": y, "silent": silent})
                if cut:
                    report.members_affected.update((x, y))
                    report.conns_cut += cut if x == a else 0
        return report

    def link_up(self, a: str, b: str, *, connect: bool = True) -> FaultReport:
        """Restore the path between a and b and (by default) have a dial b."""
        report = self._report("link_up", f"{a}-{b}")
        for x, y in ((a, b), (b, a)):
            if x in self.members:
                self.request(x, {"op": "uncut", "peer": y})
        if a in self.members and b in self.members:  # the two may link now
            report.members_affected.update((a, b))
            if connect:
                self.connect(a, b)
        return report

    def partition(self, groups: Sequence[Iterable[str]], *, one_way: bool = False) -> FaultReport:
        """Hold back every byte between groups until heal."""
        groups = [sorted(g) for g in groups]
        name = " | ".join(",".join(g) for g in groups)
        report = self._report("partition_one_way" if one_way else "partition", name)
        mapping = {m: i for i, g in enumerate(groups) for m in g}
        self._broadcast({"op": "partition", "groups": mapping, "one_way": one_way})
        report.members_affected.update(m for m in mapping if m in self.members)
        self._groups = mapping
        return report

    def heal(self) -> FaultReport:
        """End the partition; held bytes go on."""
        report = self._report("heal", "all")
        report.members_affected.update(m for m in self._groups if m in self.members)
        self._groups = {}
        report.bytes_held = sum(n or 0 for n in self._broadcast({"op": "heal"}))
        return report

    def crash(self, member_id: str) -> FaultReport:
        """Crash a member: SIGKILL its process with one member per process (the OS resets its
        connections), else reset its connections in its worker."""
        report = self._gone("crash", member_id)
        if self._signals:
            self._paused.pop(member_id, None)
            self._end(member_id).close(kill=True)
        else:
            self.request(member_id, {"op": "crash"})
            self._end(member_id)
        return report

    def power_off(self, member_id: str) -> FaultReport:
        """Silence a member until keepalive gives up on it: SIGSTOP its process with one member
        per process, else switch its sockets off in its worker."""
        report = self._gone("power_off", member_id)
        if self._signals:
            self._paused.pop(member_id, None)
            worker = self._end(member_id)
            worker.proc.send_signal(signal.SIGSTOP)
            self._stopped[member_id] = worker
        else:
            self.request(member_id, {"op": "power_off"})
            self._end(member_id)
        return report

    def _gone(self, kind: str, member_id: str) -> FaultReport:
        """Report a member's end: it and its neighbours, as last seen, are affected."""
        proxy = take_running(self.members, member_id)
        report = self._report(kind, member_id)
        report.members_affected.update([member_id, *proxy.neighbours])
        report.conns_cut = len(proxy.neighbours)
        return report

    def _end(self, member_id: str) -> _Worker:
        """Take a member that ended out of its worker; with one member per process, its worker
        is no longer running (its process is the caller's to stop)."""
        worker = self.workers.pop(member_id)
        worker.members.discard(member_id)
        if self._signals:
            del self._running[worker.name]
        return worker

    def pause(self, member_id: str) -> FaultReport:
        """Stop a member until :meth:`resume`: SIGSTOP its process with one member per process
        (its last snapshot stands in), else pause its transport in its worker."""
        running_member(self.members, member_id)
        report = self._report("pause", member_id)
        report.members_affected.add(member_id)
        if not self._signals:
            self.request(member_id, {"op": "pause"})
        elif member_id not in self._paused:
            self.workers[member_id].proc.send_signal(signal.SIGSTOP)
            self._paused[member_id] = []
        return report

    def resume(self, member_id: str) -> FaultReport:
        """Let a paused member go on with everything that waited."""
        running_member(self.members, member_id)
        report = self._report("resume", member_id)
        report.members_affected.add(member_id)
        report.chunks_held = self._resume(member_id)
        return report

    def _resume(self, member_id: str) -> int:
        """Continue a paused member, if it is; returns how many commands (its own process) or
        timers (in a shared one) waited for it."""
        if not self._signals:
            return self.request(member_id, {"op": "resume"})
        missed = self._paused.pop(member_id, None)
        if missed is None:
            return 0
        self.workers[member_id].proc.send_signal(signal.SIGCONT)
        for req in missed:
            self.request(member_id, req)
        return len(missed)

    def restart(self, member_id: str, *, join: Iterable[str] = ()) -> FaultReport:
        """A fresh life of a crashed or powered-off member, same id and address (in a fresh
        process with one member per process)."""
        report = self._report("restart", member_id)
        old = self._stopped.pop(member_id, None)
        if old is not None:
            old.close(kill=True)
        self.add_member(member_id, join=join)
        report.members_affected.add(member_id)
        return report

    def leave(self, member_id: str) -> FaultReport:
        """Graceful leave; with one member per process, its worker exits."""
        running_member(self.members, member_id)
        self._resume(member_id)  # a stopped member cannot say goodbye
        self.request(member_id, {"op": "leave"})
        report = self._gone("leave", member_id)
        worker = self._end(member_id)
        if self._signals:
            worker.close()
        return report

    def join(self, member_id: str, connect: Iterable[str]) -> FaultReport:
        """Start a new member that dials ``connect``."""
        report = self._report("join", member_id)
        connect = list(connect)
        self.add_member(member_id, join=connect)
        report.members_affected.update([member_id, *connect])
        return report
