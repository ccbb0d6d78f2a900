"""Simulation benchmarks: routed Data throughput and cold-start convergence at scale.

Throughput: hop deliveries per wall second of routed Data on a converged 100-member random
4-regular network, against a bare SimPy callback loop doing the same number of hop deliveries.
Scale: cold-start convergence for growing N, in seconds and in units of the bare-SimPy
1M-callback time measured around each cold start. Run: python benchmarks/bench_sim.py [N ...]

Run in the benchmarks' environment (benchmarks/README.md), which has ns.py, it also measures
ns.py's generator -> wire -> sink (benchmarks/baseline_nspy.py) in this process for comparison.
"""

from __future__ import annotations

import gc
import math
import random
import resource
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import networkx as nx
from harness import bare_simpy, installed, machine_line, spread

from peerlab.member import Member
from peerlab.sim import SimNetwork
from peerlab.trace import Tracer
from peerlab.wire import Data


def converged_network(
    n: int, seed: int = 1, chunking: bool = False, security: str = "open"
) -> SimNetwork:
    """A converged random 4-regular network of ``n`` members, tracing off.

    The seeded chunker is off unless asked for: each write arrives whole, as a small write
    mostly does on a real link. The chunker, there to exercise the members' framing (it splits
    a fifth of all writes in two and merges writes arriving together half the time), makes a
    routed hop about a third dearer; ``throughput(chunking=True)`` measures with it.
    """
    g = nx.random_regular_graph(4, n, seed=seed)
    net = SimNetwork(seed, tracer=Tracer(keep=False), chunking=chunking, security=security)
    for i in range(n):
        net.add_member(f"m{i}")
    for u, v in g.edges:
        net.connect(f"m{u}", f"m{v}")
    ok = net.run_until(
        lambda: all(m.reachable == n - 1 and not m.routes_pending for m in net.members.values()),
        120,
        0.05,
    )
    assert ok, "did not converge"
    return net


def random_pairs(net: SimNetwork, rng: random.Random, messages: int) -> list[tuple[Member, str]]:
    """``messages`` (source member, destination id) pairs of two different members."""
    names = sorted(net.members)
    return [(net.members[a], b) for a, b in (rng.sample(names, 2) for _ in range(messages))]


def send_paced(net: SimNetwork, pairs: list[tuple[Member, str]], per_wake: int = 10) -> None:
    """Have each source send 100 bytes to its destination: ``per_wake`` pairs every millisecond.

    Each wake schedules the next, so the event queue holds the messages in flight rather than
    every send of the run at once (a 20,000-entry heap made each hop ~7% dearer in instructions);
    waking for ten sends at a time keeps the load generator's own events to a tenth of a message.
    """
    payload = b"x" * 100

    def wake(start: int) -> None:
        for src, dst in pairs[start : start + per_wake]:
            src.send(dst, payload)
        if start + per_wake < len(pairs):
            net.schedule(1e-3, partial(wake, start + per_wake))

    net.schedule(0, partial(wake, 0))


def routed_round(net: SimNetwork, pairs: list[tuple[Member, str]]) -> tuple[int, int]:
    """Send one routed Data message for each pair, paced at 10 per millisecond, and run until
    all are delivered; returns (messages delivered, hop deliveries).

    Deliveries are counted by the members' application callback: tracing stays off, as in any
    measured run.
    """
    delivered = [0, 0]

    def count(data: Data) -> None:
        delivered[0] += 1
        delivered[1] += len(data.path) - 1

    for m in net.members.values():
        m.on_deliver = count
    send_paced(net, pairs)
    # the sends take 0.1 ms each; the last is delivered within 0.1 s (a path of at most ~8
    # hops of ~5 ms): no idle seconds of keepalives in the measured time
    net.run(len(pairs) * 1e-4 + 0.1)
    if delivered[0] != len(pairs):
        raise SystemExit(f"only {delivered[0]} of {len(pairs)} messages delivered in the round")
    return delivered[0], delivered[1]


def throughput(messages: int = 4_000, rounds: int = 25, chunking: bool = False) -> None:
    """Routed Data hop deliveries per second on one converged network, against the baselines.

    This shared machine's speed drifts by tens of percent within a second, so the figure is
    built from many short rounds: each times peerlab and the bare SimPy loop with the same
    number of hops back to back (which goes first alternates) and, when ns.py is installed,
    ns.py's generator -> wire -> sink just before and just after (the mean of the two), all in
    this process; the ratios are taken within the round, and their median and quartiles over
    the rounds are reported. So is the ratio of each side's best round (as timeit takes the
    best of its repeats: noise only ever slows a run down).
    """
    nspy = installed("ns")
    net = converged_network(100, chunking=chunking)
    rng = random.Random(3)
    ratios, nspy_ratios = [], []
    best = {"peerlab": 0.0, "bare": 0.0, "ns.py": 0.0}
    routes = {m: m.routes for m in net.members.values()}
    for i in range(rounds):
        pairs = random_pairs(net, rng, messages)
        expected = sum(routes[src][dst].hops for src, dst in pairs)
        nspy_before = nspy_rate(20_000) if nspy else 0.0
        bare = bare_simpy(expected) if i % 2 else 0.0
        t0 = time.perf_counter()
        delivered, hops = routed_round(net, pairs)
        wall = time.perf_counter() - t0
        if not i % 2:
            bare = bare_simpy(expected)
        ratio = (hops / wall) / (expected / bare)
        ratios.append(ratio)
        best["peerlab"] = max(best["peerlab"], hops / wall)
        best["bare"] = max(best["bare"], expected / bare)
        line = (
            f"  round {i + 1:>2}: {delivered} messages, {hops} hop deliveries, "
            f"{hops / wall:,.0f} hops/s; bare SimPy {expected / bare:,.0f} callbacks/s, "
            f"ratio {ratio:.3f}"
        )
        if nspy:
            runs = (nspy_before, nspy_rate(20_000))
            nspy_ratios.append(hops / wall / statistics.mean(runs))
            best["ns.py"] = max(best["ns.py"], *runs)
            line += f"; ns.py {statistics.mean(runs):,.0f} packets/s, ratio {nspy_ratios[-1]:.2f}"
        print(line, flush=True)
    print(
        f"throughput (chunker {'on' if chunking else 'off'}): ratio to bare SimPy {spread(ratios)}"
    )
    print(
        f"  best rounds: {best['peerlab']:,.0f} hops/s against {best['bare']:,.0f} callbacks/s:"
        f" ratio {best['peerlab'] / best['bare']:.3f}"
    )
    if nspy:
        print(f"  peerlab hops / ns.py packets {spread(nspy_ratios)}")
        print(
            f"  best rounds: {best['peerlab']:,.0f} hops/s against {best['ns.py']:,.0f} packets/s:"
            f" ratio {best['peerlab'] / best['ns.py']:.2f}"
        )
    else:
        print("  ns.py not installed here: no comparison with it (see benchmarks/README.md)")


def nspy_rate(count: int) -> float:
    """ns.py's packets per wall second over a run of ``count`` packets (ns.py installed)."""
    from baseline_nspy import run

    received, elapsed = run(count)
    return received / elapsed


def scale(sizes: list[int], repeat_up_to: int = 1000) -> None:
    """Time cold starts, each between two bare-SimPy 1M-callback runs; sizes up to
    ``repeat_up_to`` three times, larger ones once.

    This shared machine's speed drifts by tens of percent within minutes, so each cold start is
    expressed in units of the mean of the bare runs just before and after it, and a size's
    figure is the median of its runs in units (seconds are shown beside them).
    """
    points = []
    for n in sizes:
        walls, units = [], []
        for _ in range(3 if n <= repeat_up_to else 1):
            before = bare_simpy(1_000_000)
            gc.collect()
            t0 = time.perf_counter()
            net = converged_network(n)
            walls.append(time.perf_counter() - t0)
            frames = sum(sum(m.counters.frames_sent.values()) for m in net.members.values())
            now = net.now
            del net
            units.append(walls[-1] / ((before + bare_simpy(1_000_000)) / 2))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        points.append((n, statistics.median(units)))
        runs = ", ".join(f"{u:.2f} = {w:.2f}s" for u, w in zip(units, walls, strict=True))
        print(
            f"  N={n:>5}: {statistics.median(units):6.2f} units (runs: {runs}), "
            f"{frames:,} frames, sim time {now:.2f}s, peak RSS {rss:,.0f} MiB",
            flush=True,
        )
    print("scale: 1 unit = the bare SimPy 1M-callback time around each run")
    if len(points) >= 2:
        xs = [math.log(n) for n, _ in points]
        ys = [math.log(u) for _, u in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        print(f"  fitted growth exponent: time ~ N^{slope:.2f}")
        plot_scale(points)


SCALE_PLOT = Path(__file__).with_name("scale.png")


def plot_scale(points: list[tuple[int, float]], path: Path = SCALE_PLOT) -> None:
    """Write a log-log PNG of cold-start convergence time (in units) against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [n for n, _ in points]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(ns, [u for _, u in points], "o-", label="peerlab")
    ax.loglog([1000, 4000], [4, 80], "rx", label="targets (N = 1,000: 4; N = 4,000: 80)")
    ax.set_xticks(ns, [f"{n:,}" for n in ns], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_xlabel("members (random 4-regular)")
    ax.set_ylabel("cold start (units of 1M bare SimPy callbacks)")
    ax.set_title("simulated cold-start convergence")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"  plot written to {path}")


if __name__ == "__main__":
    print(machine_line())
    throughput()
    scale([int(a) for a in sys.argv[1:]] or [250, 500, 1000])
