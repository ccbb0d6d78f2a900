"""Soak: a live overlay of five `peerlab member` processes, a - b - c - d - e in a line, with b
under a mixed attack (garbage frames, slowloris partial Hellos, connect-and-reset churn, fake
members that say Hello and never answer) for SECONDS, and the same overlay unattacked for as
long just before, as the baseline. a and e send each other RATE messages a second, across b.

Reports, for both phases: the legitimate messages delivered, their latency (median and p99),
the attackers' connections opened and refused (or closed by b) a second, and b's peak resident
memory and file descriptors. Goals: >= 99% delivered, p99 <= 2x the baseline's, b's peak
memory within 50 MB of the baseline's.

Run: python benchmarks/bench_soak.py [SECONDS]   (each phase; default 60)

The attack runs in a process of its own, so that its threads do not slow the process that
times the messages. The attackers and the member driver are the hostile-peer suite's
(tests/attackers.py, tests/peerproc.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from attackers import ResetChurn, Swarm, advert, frame, hello, partial_hello
from harness import machine_line
from peerproc import LiveMember, Traffic

from peerlab.wire import Adverts, encode_frame

RATE = 20  # messages a second, each way
GOALS = {"delivery": 0.99, "p99_ratio": 2.0, "rss_mb": 50}


def attack(target: tuple[str, int], seconds: float, out: mp.Queue) -> None:
    """Run the mixed attack on ``target`` for ``seconds``; put what each part did on ``out``."""
    bound = seconds + 10  # every part stops when the phase ends; this is only a bound
    n = int(seconds)
    parts = {
        "garbage": Swarm(
            target,
            conns=4,
            opening=lambda i: frame(os.urandom(64)),
            renew=True,
            rate=50,
            max_opens=50 * n,
            duration=bound,
        ),
        "slowloris": Swarm(
            target,
            conns=128,
            opening=lambda i: partial_hello(f"slow{i}"),
            drip=b"\xc0",
            every=1.0,
            renew=True,
            rate=50,
            max_opens=50 * n + 128,
            duration=bound,
        ),
        "reset churn": ResetChurn(target, count=100 * n, rate=100, duration=bound),
        "fake members": Swarm(
            target,
            conns=32,
            opening=lambda i: (
                hello(f"fake{i}") + encode_frame(Adverts([advert(f"fake{i}", ["b", f"ghost{i}"])]))
            ),
            renew=True,
            rate=20,
            max_opens=20 * n + 32,
            duration=bound,
        ),
    }
    with ExitStack() as stack:
        for part in parts.values():
            stack.enter_context(part)
        time.sleep(seconds)  # the phase: the attack goes on meanwhile
    out.put({name: (part.opened, part.refused) for name, part in parts.items()})


def phase(members: list[LiveMember], seconds: float, attacked: bool) -> dict:
    """Run traffic a <-> e for ``seconds`` (with b attacked, if ``attacked``); what it measured."""
    a, b, e = members[0], members[1], members[-1]
    b.reset_peak()
    peak_fds = b.fds()
    counts: dict[str, tuple[int, int]] = {}
    with Traffic(a, e, RATE) as there, Traffic(e, a, RATE) as back:
        attacker = None
        if attacked:
            host, port = b.address.rsplit(":", 1)
            out: mp.Queue = mp.get_context("spawn").Queue()
            attacker = mp.get_context("spawn").Process(
                target=attack, args=((host, int(port)), seconds, out)
            )
            attacker.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak_fds = max(peak_fds, b.fds())
            time.sleep(0.2)  # sampling b's descriptors
        if attacker is not None:
            counts = out.get(timeout=60)
            attacker.join(30)
    flows = (there, back)
    for f in flows:
        f.delivery(timeout=20)  # waits for the last ones
    sent = sum(len(f.sent) for f in flows)
    delivered = sum(len(f.arrivals()) for f in flows)
    latencies = sorted(x for f in flows for x in f.latencies())
    return {
        "sent": sent,
        "delivered": delivered,
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "peak_rss": b.peak_rss(),
        "peak_fds": peak_fds,
        "attack": counts,
    }


def overlay() -> list[LiveMember]:
    """Five members in a line, each joining the one before; returned once a routes to e."""
    members: list[LiveMember] = []
    for name in "abcde":
        members.append(LiveMember(name, [members[-1].address] if members else []))
    members[0].wait_for_route("e", "b", timeout=30)
    members[-1].wait_for_route("a", "d", timeout=30)
    return members


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    print(machine_line())
    members = overlay()
    try:
        base = phase(members, seconds, attacked=False)
        hit = phase(members, seconds, attacked=True)
    finally:
        for m in members:
            m.close()
    report(seconds, base, hit)


def report(seconds: float, base: dict, hit: dict) -> None:
    mb = 1 << 20
    ratio = hit["p99"] / base["p99"]
    extra = (hit["peak_rss"] - base["peak_rss"]) / mb
    print(f"soak: a <-> e across b, {RATE}/s each way, {seconds:.0f}s a phase")
    print(f"{'':28}{'baseline':>14}{'attacked':>14}")
    delivered = [f"{r['delivered']}/{r['sent']}" for r in (base, hit)]
    print(f"{'delivered':28}{delivered[0]:>14}{delivered[1]:>14}")
    print(f"{'latency p50 (ms)':28}{base['p50'] * 1e3:>14.1f}{hit['p50'] * 1e3:>14.1f}")
    print(f"{'latency p99 (ms)':28}{base['p99'] * 1e3:>14.1f}{hit['p99'] * 1e3:>14.1f}")
    print(f"{'b peak RSS (MB)':28}{base['peak_rss'] / mb:>14.1f}{hit['peak_rss'] / mb:>14.1f}")
    print(f"{'b peak fds':28}{base['peak_fds']:>14}{hit['peak_fds']:>14}")
    print("attack, connections a second:  opened  refused or closed by b")
    for name, (opened, refused) in hit["attack"].items():
        print(f"  {name:28}{opened / seconds:>8.1f}{refused / seconds:>10.1f}")
    total = sum(r for _, r in hit["attack"].values())
    print(f"  {'all':28}{'':>8}{total / seconds:>10.1f}")
    delivery = hit["delivered"] / hit["sent"]
    checks = (
        (f"delivery {delivery:.2%} >= {GOALS['delivery']:.0%}", delivery >= GOALS["delivery"]),
        (f"p99 {ratio:.2f}x baseline <= {GOALS['p99_ratio']}x", ratio <= GOALS["p99_ratio"]),
        (f"peak RSS +{extra:.1f} MB <= {GOALS['rss_mb']} MB", extra <= GOALS["rss_mb"]),
    )
    for text, met in checks:
        print(f"goal: {text}: {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
