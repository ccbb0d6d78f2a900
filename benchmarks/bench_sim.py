"""Simulation benchmarks: routed Data throughput and cold-start convergence at scale.

Throughput: hop deliveries per wall second of routed Data on a converged 100-member random
4-regular network, against a bare SimPy callback loop doing the same number of hop deliveries.
Scale: cold-start convergence for growing N, in seconds and in units of the same run's bare-SimPy
1M-callback time. Run: python benchmarks/bench_sim.py [N ...]

With PEERLAB_BASELINE_PYTHON set to an interpreter that has ns.py installed, the run also measures
ns.py's generator -> wire -> sink (benchmarks/baseline_nspy.py) for comparison.
"""

from __future__ import annotations

import gc
import math
import random
import resource
import sys
import time

import networkx as nx
import simpy
from harness import external_baseline, machine_line

from peerlab.trace import Tracer
from sim import SimNetwork


def bare_simpy(callbacks: int) -> float:
    """Wall seconds for ``callbacks`` timeout callbacks in a bare SimPy environment."""
    env = simpy.Environment()
    left = [callbacks]

    def hop(_event) -> None:
        left[0] -= 1
        if left[0] > 0:
            env.timeout(0.001).callbacks.append(hop)

    for _ in range(100):
        env.timeout(0.001).callbacks.append(hop)
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def converged_network(n: int, seed: int = 1) -> SimNetwork:
    g = nx.random_regular_graph(4, n, seed=seed)
    net = SimNetwork(seed, tracer=Tracer(keep=False), chunking=False)
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


def throughput(messages: int = 20_000) -> None:
    net = converged_network(100)
    names = sorted(net.members)
    rng = random.Random(3)
    tracer = Tracer(kinds={"deliver"})
    for m in net.members.values():
        m.tracer = tracer
    t0 = time.perf_counter()
    for i in range(messages):
        src, dst = rng.sample(names, 2)
        net.schedule(i * 1e-4, lambda s=src, d=dst: net.members[s].send(d, b"x" * 100))
    net.run(messages * 1e-4 + 2)
    wall = time.perf_counter() - t0
    hops = sum(e.fields["hops"] for e in tracer.events)
    bare = min(bare_simpy(hops) for _ in range(3))
    print(
        f"throughput: {len(tracer.events)} messages, {hops} hop deliveries in {wall:.2f}s "
        f"= {hops / wall:,.0f} hops/s; bare SimPy {hops / bare:,.0f} callbacks/s; "
        f"ratio {bare / wall:.2f}"
    )
    nspy = external_baseline("baseline_nspy.py", "200000")
    if nspy is not None:
        print(
            f"  ns.py generator -> wire -> sink: {nspy:,.0f} packets/s; "
            f"peerlab hops / ns.py packets = {hops / wall / nspy:.2f}"
        )


def scale(sizes: list[int]) -> None:
    # the best of three: the first run in a process is the slowest (the heap is still growing)
    unit = min(bare_simpy(1_000_000) for _ in range(3))
    print(f"scale: 1 unit = bare SimPy 1M callbacks (best of 3) = {unit:.2f}s")
    points = []
    for n in sizes:
        gc.collect()
        t0 = time.perf_counter()
        net = converged_network(n)
        wall = time.perf_counter() - t0
        frames = sum(sum(m.counters.frames_sent.values()) for m in net.members.values())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        points.append((n, wall))
        print(
            f"  N={n:>5}: {wall:7.2f}s = {wall / unit:6.2f} units, {frames:>9,} frames, "
            f"sim time {net.now:.2f}s, peak RSS {rss:,.0f} MiB"
        )
        del net
    if len(points) >= 2:
        xs = [math.log(n) for n, _ in points]
        ys = [math.log(t) for _, t in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        print(f"  fitted growth exponent: time ~ N^{slope:.2f}")
        plot_scale(points, unit)


def plot_scale(
    points: list[tuple[int, float]], unit: float, path: str = "benchmarks/scale.png"
) -> None:
    """Write a log-log PNG of cold-start convergence time against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog([n for n, _ in points], [t / unit for _, t in points], "o-")
    ax.set_xlabel("members (random 4-regular)")
    ax.set_ylabel("cold start (units of 1M bare SimPy callbacks)")
    ax.set_title("simulated cold-start convergence")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"  plot written to {path}")


if __name__ == "__main__":
    print(machine_line())
    throughput()
    scale([int(a) for a in sys.argv[1:]] or [250, 500, 1000])
