"""Real relay benchmark: 100-byte Data messages A -> B -> C, three processes on loopback.

Baseline measured in the same run: a bare selectors relay of 104-byte length-prefixed frames
with batched writes (the fastest a Python relay of this shape can go): the sender builds each
frame (prefix, send time, filler) as A builds each message, and the relay and the sink find the
frames by their length prefixes, as any relay of such frames must. Also one-way latency
(median, p99) at low load. Run: python benchmarks/bench_relay.py [MESSAGES [ROUNDS]]

Run in the benchmarks' environment (benchmarks/README.md), which has p2pnetwork, it also
measures p2pnetwork sending A -> B (benchmarks/baseline_p2pnetwork.py, in processes of its own)
for comparison.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import selectors
import socket
import statistics
import struct
import sys
import time

from harness import external_baseline, machine_line, spread

from peerlab.identity import RunCredentials
from peerlab.linkstate import AdvertCache
from peerlab.member import Member, MemberConfig
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.transport import TcpLimits, TcpTransport

PAYLOAD = 100
STAMP = struct.Struct(">d")  # each payload starts with its send time
FILLER = bytes(PAYLOAD - STAMP.size)
CONFIG = MemberConfig(keepalive_interval=1.0, dead_timeout=30.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def member_process(name, port, join, count, mode, out, done, security="open") -> None:
    """Run one member until C has all ``count`` messages, then put ``(name, CPU seconds spent
    in the loop, C's stamps or None)`` on ``out``. C's stamps are (received, sent) times: of
    every message in latency mode; in throughput mode, like the bare sink, only the arrival
    times of the first and the last message. ``security="signed"`` runs the members in secure
    mode (a network made from seed 0), ``"tls"`` in secure mode over TLS."""
    loop = EventLoop(name)
    stamps: list[tuple[float, float]] = []
    got = [0]

    def delivered(data) -> None:
        got[0] += 1
        if mode == "latency" or got[0] in (1, count):
            stamps.append((time.perf_counter(), STAMP.unpack_from(data.payload)[0]))
        if got[0] == count:
            loop.request_stop()

    credentials = None if security == "open" else RunCredentials(0, time.time, simulated=False)
    t = TcpTransport(
        loop,
        "127.0.0.1",
        port,
        name=name,
        limits=TcpLimits(max_write_buffer=64 << 20),
        tls=credentials.tls(name) if security == "tls" else None,
    )
    identity = credentials and credentials.identity(name)
    m = Member(
        name,
        t,
        config=CONFIG,
        on_deliver=delivered,
        identity=identity,
        cache=AdvertCache(trust=identity and identity.trust),
    )
    t.handler = m
    t.start()
    m.start()

    def dial() -> None:  # the other processes may not be listening yet
        target = f"127.0.0.1:{join[0]}" if join else None
        if target is not None and target not in m.peer_addresses():
            m.connect(target)
            loop.call_later(0.05, dial)

    dial()
    if name == "a":
        sent = [0]

        def pump() -> None:
            if "c" not in m.routes:
                loop.call_later(0.01, pump)
                return
            burst = 1 if mode == "latency" else 2000
            with m.batch():  # as the bare sender joins its frames into one write
                for _ in range(min(burst, count - sent[0])):
                    m.send("c", STAMP.pack(time.perf_counter()) + FILLER)
                    sent[0] += 1
            if sent[0] < count:
                loop.call_later(0.002 if mode == "latency" else 0.0, pump)

        loop.call_later(0.2, pump)
    deadline = time.monotonic() + 60
    cpu = time.process_time()
    while not loop.stopping and not done.is_set() and time.monotonic() < deadline:
        loop.run_once(0.05)
    cpu = time.process_time() - cpu
    if loop.failures:
        print(f"{name}: {loop.failures} callbacks failed (logged)", file=sys.stderr)
    if name == "c":
        done.set()
    out.put((name, cpu, stamps if name == "c" else None))
    t.shutdown()


def peerlab_relay(
    count: int, mode: str, security: str = "open"
) -> tuple[list[tuple[float, float]], dict[str, float]]:
    """Run A -> B -> C; returns C's stamps (see member_process) and each member's CPU seconds."""
    ports = {n: free_port() for n in "abc"}
    out: mp.Queue = mp.Queue()
    done = mp.Event()
    roles = [("c", [], count), ("b", [ports["c"]], 0), ("a", [ports["b"]], count)]
    procs = [
        mp.Process(
            target=member_process,
            args=(name, ports[name], join, n, mode, out, done, security),
        )
        for name, join, n in roles
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=150) for _ in procs]  # in any order: each has its feeder thread
    cpu = {name: seconds for name, seconds, _ in results}
    (stamps,) = [got for _, _, got in results if got is not None]
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.terminate()
            p.join(10)
    return stamps, cpu


_prefix = struct.Struct(">I")


def whole_frames(buf: bytearray) -> tuple[int, int]:
    """Walk the length prefixes at the start of ``buf``: (frames, bytes) of the whole frames.

    This is what makes the bare relay a relay of length-prefixed frames rather than a byte pipe:
    like any relay of such frames, it cannot know where a frame ends without reading its prefix.
    """
    unpack = _prefix.unpack_from
    pos = frames = 0
    end = len(buf)
    while end - pos >= 4:
        (size,) = unpack(buf, pos)
        if end - pos - 4 < size:
            break
        pos += 4 + size
        frames += 1
    return frames, pos


def bare_sink(srv: socket.socket, count, out) -> None:
    conn, _ = srv.accept()
    cpu = time.process_time()
    got = 0
    pending = bytearray()
    first = None
    while got < count:
        data = conn.recv(1 << 20)
        if not data:
            break
        first = first or time.perf_counter()
        pending += data
        frames, whole = whole_frames(pending)
        got += frames
        del pending[:whole]
    out.put((first, time.perf_counter(), got, time.process_time() - cpu))
    conn.close()
    srv.close()


def bare_relay(srv: socket.socket, dst: int, out) -> None:
    conn, _ = srv.accept()
    cpu = time.process_time()
    nxt = socket.create_connection(("127.0.0.1", dst))
    sel = selectors.DefaultSelector()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ)
    pending = bytearray()
    while True:
        sel.select(1.0)
        try:
            data = conn.recv(1 << 20)
        except BlockingIOError:
            continue
        if not data:
            break
        pending += data
        _, whole = whole_frames(pending)
        nxt.sendall(pending[:whole])  # batched write of every whole frame
        del pending[:whole]
    out.put(time.process_time() - cpu)
    nxt.close()
    conn.close()
    srv.close()


def bare(count: int) -> tuple[float, float]:
    """Messages per second through the bare relay, and the CPU seconds per message of its three
    processes together: the sender frames each message (length prefix, send time, filler), the
    relay and the sink walk every frame's prefix."""
    # listening sockets are made here and inherited (fork), so every connect finds a listener
    fork = mp.get_context("fork")
    sink_srv = socket.create_server(("127.0.0.1", 0))
    relay_srv = socket.create_server(("127.0.0.1", 0))
    out = fork.Queue()
    sink = fork.Process(target=bare_sink, args=(sink_srv, count, out))
    relay = fork.Process(target=bare_relay, args=(relay_srv, sink_srv.getsockname()[1], out))
    sink.start()
    relay.start()
    src = socket.create_connection(relay_srv.getsockname()[:2])
    header = _prefix.pack(PAYLOAD)
    stamp = STAMP.pack
    clock = time.perf_counter
    cpu = time.process_time()
    for _ in range(count // 1000):
        src.sendall(b"".join([header + stamp(clock()) + FILLER for _ in range(1000)]))
    cpu = time.process_time() - cpu
    first, last, got, sink_cpu = out.get(timeout=60)
    src.close()
    cpu += sink_cpu + out.get(timeout=60)  # the relay's, once the sender's close reached it
    relay.join(10)
    sink.join(10)
    sink_srv.close()
    relay_srv.close()
    return got / (last - first), cpu / got


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    print(machine_line())
    # This shared machine's speed drifts by tens of percent within seconds, so the ratio is the
    # median of short rounds, each running peerlab and the bare relay back to back (which goes
    # first alternates).
    ratios, totals, cost_ratios = [], [], []
    for i in range(rounds):
        base, base_cpu = bare(count) if i % 2 else (0.0, 0.0)
        stamps, cpu = peerlab_relay(count, "throughput")
        if not i % 2:
            base, base_cpu = bare(count)
        (first, _), (last, _) = stamps
        ours = (count - 1) / (last - first)
        ratios.append(ours / base)
        per_message = {name: cpu[name] / count * 1e6 for name in "abc"}
        totals.append(sum(per_message.values()))
        cost_ratios.append(base_cpu * 1e6 / totals[-1])
        print(
            f"  round {i + 1}: peerlab {ours:,.0f} msg/s, bare relay {base:,.0f} msg/s, "
            f"ratio {ours / base:.3f}; CPU per message "
            + ", ".join(f"{name.upper()} {us:.1f}" for name, us in per_message.items())
            + f", in all {totals[-1]:.1f} us (bare relay {base_cpu * 1e6:.2f} us)",
            flush=True,
        )
    print(
        f"throughput A->B->C, {PAYLOAD}-byte payloads, {count} messages a round: "
        f"ratio to the bare selectors relay {spread(ratios)}"
    )
    print(f"  at equal CPU time (bare relay's CPU per message / ours) {spread(cost_ratios)}")
    cores = len(os.sched_getaffinity(0))
    total = statistics.median(totals)
    print(
        f"  CPU per message, all three processes (median of rounds): {total:.1f} us, so "
        f"{cores} cores carry at most {cores / total * 1e6:,.0f} msg/s"
    )
    p2p = external_baseline("baseline_p2pnetwork.py", "5000", "p2pnetwork")
    if p2p is not None:
        stamps, _ = peerlab_relay(count, "throughput")
        (first, _), (last, _) = stamps
        ours = (count - 1) / (last - first)
        print(f"  p2pnetwork A -> B: {p2p:,.0f} msg/s; peerlab {ours:,.0f}, ratio {ours / p2p:.1f}")
    lat = sorted(recv - sent for recv, sent in peerlab_relay(500, "latency")[0])
    p99 = lat[int(0.99 * (len(lat) - 1))]
    print(
        f"one-way latency at low load (500 msgs, 1 per 2 ms): median "
        f"{statistics.median(lat) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
