"""Instructions per routed hop against a bare SimPy callback, counted by valgrind's callgrind.

The clock on a shared machine drifts by tens of percent within seconds; an instruction count
does not. Each side runs twice under callgrind, once with no work and once with the work, and
the difference is divided by the number of hops, so start-up and the converged network's setup
cancel out. In the benchmarks' environment (benchmarks/README.md), which has ns.py, its
generator -> wire -> sink is counted the same way, per packet. Needs ``valgrind`` on PATH;
takes a few minutes. Run: python benchmarks/count_instructions.py [MESSAGES]
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys

from harness import installed, machine_line


def routed(drawn: int, sent: int) -> int:
    """Draw ``drawn`` random pairs on the throughput benchmark's network and send routed Data
    for all of them once to warm the members' first-hop caches, as the clock benchmark's many
    rounds do; then send again for the first ``sent`` of them; returns the hops of that second
    round. Both runs draw and warm alike, so the difference counts warm routing alone."""
    from bench_sim import converged_network, random_pairs, routed_round

    net = converged_network(100)
    pairs = random_pairs(net, random.Random(3), drawn)
    routed_round(net, pairs)
    return routed_round(net, pairs[:sent])[1]


def bare(callbacks: int) -> int:
    """Run the bare SimPy loop for ``callbacks`` callbacks; returns ``callbacks``. SimPy is
    imported in the run of 0 callbacks too, so the difference counts the loop alone."""
    import simpy  # noqa: F401
    from harness import bare_simpy

    if callbacks:
        bare_simpy(callbacks)
    return callbacks


def nspy(packets: int) -> int:
    """Send ``packets`` through ns.py's generator -> wire -> sink; returns the packets
    delivered. ns.py is imported in the run of 0 packets too."""
    from baseline_nspy import run

    return run(packets)[0] if packets else 0


def counted(command: list[str], done_pattern: str) -> tuple[int, int]:
    """(instructions, work done) of one run of ``command`` under callgrind; the work done is the
    number its output gives after ``done_pattern``."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=1800,
    )
    collected = re.search(r"Collected : (\d+)", out.stderr)
    done = re.search(rf"^{done_pattern} (\d+)$", out.stdout, re.MULTILINE)
    if collected is None or done is None:
        raise SystemExit(f"callgrind run of {command} gave no count:\n{out.stderr[-2000:]}")
    return int(collected.group(1)), int(done.group(1))


def per_unit(command: list[str], amount: int, done_pattern: str = "DONE") -> tuple[float, int]:
    """Instructions per unit of work (hop, callback or packet) and the units counted: the
    difference between a run with ``amount`` appended to ``command`` and one with 0."""
    base, base_done = counted([*command, "0"], done_pattern)
    total, done = counted([*command, str(amount)], done_pattern)
    return (total - base) / (done - base_done), done - base_done


def inner(side: str, *args: int) -> list[str]:
    """The command that runs one side of this script under the same interpreter."""
    return [sys.executable, os.path.abspath(__file__), "--inner", side, *map(str, args)]


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("count_instructions.py needs valgrind on PATH")
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(machine_line())
    ours, hops = per_unit(inner("routed", messages), messages)
    theirs, _ = per_unit(inner("bare"), hops)
    print(
        f"routed Data: {ours:,.0f} instructions per hop ({messages} messages, {hops} hops); "
        f"bare SimPy: {theirs:,.0f} per callback; ratio {theirs / ours:.3f}"
    )
    if installed("ns"):
        nspy, packets = per_unit(inner("nspy"), 20_000)
        print(
            f"ns.py generator -> wire -> sink: {nspy:,.0f} instructions per packet "
            f"({packets} packets); peerlab hops / ns.py packets at equal instructions: "
            f"{nspy / ours:.3f}"
        )
    else:
        print("ns.py not installed here: not counted (see benchmarks/README.md)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        work = {"routed": routed, "bare": bare, "nspy": nspy}[sys.argv[2]]
        print(f"DONE {work(*map(int, sys.argv[3:]))}")
    else:
        main()
