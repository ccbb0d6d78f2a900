"""Secure mode's cost: cold start in simulation and the real relay, each against open mode in
the same run.

Cold start: a random 4-regular network of N members (200 and 1,000) converging from nothing in
the simulator, open and signed alternately (which goes first alternates), wall seconds; the
ratio is signed over open. Relay: 100-byte messages A -> B -> C in three processes on loopback
(benchmarks/bench_relay.py), open and signed alternately; the ratio is signed throughput over
open. Run: python benchmarks/bench_secure.py [ROUNDS]
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

from bench_relay import peerlab_relay
from bench_sim import converged_network
from harness import machine_line, spread

MODES = ("open", "signed")


def cold_start(n: int, security: str) -> float:
    """Wall seconds for ``n`` members to converge from nothing."""
    gc.collect()
    start = time.perf_counter()
    net = converged_network(n, seed=1, security=security)
    seconds = time.perf_counter() - start
    del net
    return seconds


def relay_rate(count: int, security: str) -> float:
    """Messages per second through A -> B -> C."""
    stamps, _ = peerlab_relay(count, "throughput", security)
    (first, _), (last, _) = stamps
    return (count - 1) / (last - first)


def alternating(rounds: int, measure) -> dict[str, list[float]]:
    """``measure(mode)`` for both modes each round, which goes first alternating."""
    got: dict[str, list[float]] = {mode: [] for mode in MODES}
    for i in range(rounds):
        for mode in MODES if i % 2 == 0 else MODES[::-1]:
            got[mode].append(measure(mode))
    return got


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(machine_line())
    for n in (200, 1000):
        got = alternating(rounds, lambda mode, n=n: cold_start(n, mode))
        ratios = [s / o for o, s in zip(got["open"], got["signed"], strict=True)]
        print(
            f"cold start N={n}: open {statistics.median(got['open']):.2f} s, signed "
            f"{statistics.median(got['signed']):.2f} s; signed/open {spread(ratios)} (goal <= 1.5)",
            flush=True,
        )
    got = alternating(max(rounds, 5), lambda mode: relay_rate(20_000, mode))
    ratios = [s / o for o, s in zip(got["open"], got["signed"], strict=True)]
    print(
        f"relay A->B->C, 100-byte payloads: open {statistics.median(got['open']):,.0f} msg/s, "
        f"signed {statistics.median(got['signed']):,.0f} msg/s; signed/open {spread(ratios)} "
        "(goal >= 0.5)"
    )


if __name__ == "__main__":
    main()
