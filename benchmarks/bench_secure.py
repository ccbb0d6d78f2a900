"""Secure mode's cost: cold start in simulation and the real relay, each against open mode in
the same run.

Cold start: a random 4-regular network of N members (200 and 1,000) converging from nothing in
the simulator, open and signed alternately (which goes first alternates), wall seconds; the
ratio is signed over open (TLS is real-only: the simulation has no bytes to encrypt). Relay:
100-byte messages A -> B -> C in three processes on loopback (benchmarks/bench_relay.py), open,
signed and signed over TLS in turn; the ratios are throughput over open's.
Run: python benchmarks/bench_secure.py [ROUNDS]
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
RELAY_MODES = ("open", "signed", "tls")


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


def alternating(rounds: int, measure, modes: tuple[str, ...] = MODES) -> dict[str, list[float]]:
    """``measure(mode)`` for every mode each round, the order reversed every other round."""
    got: dict[str, list[float]] = {mode: [] for mode in modes}
    for i in range(rounds):
        for mode in modes if i % 2 == 0 else modes[::-1]:
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
    got = alternating(max(rounds, 5), lambda mode: relay_rate(20_000, mode), RELAY_MODES)
    print(f"relay A->B->C, 100-byte payloads: open {statistics.median(got['open']):,.0f} msg/s")
    for mode, goal in (("signed", " (goal >= 0.5)"), ("tls", "")):
        ratios = [s / o for o, s in zip(got["open"], got[mode], strict=True)]
        print(
            f"  {mode}: {statistics.median(got[mode]):,.0f} msg/s; {mode}/open {spread(ratios)}"
            f"{goal}",
            flush=True,
        )


if __name__ == "__main__":
    main()
