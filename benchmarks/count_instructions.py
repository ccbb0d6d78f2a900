"""Instructions per routed hop against a bare SimPy callback, counted by valgrind's callgrind.

The clock on a shared machine drifts by tens of percent within seconds; an instruction count
does not. Each side runs twice under callgrind, once with no work and once with the work, and
the difference is divided by the number of hops, so start-up and the converged network's setup
cancel out. Needs ``valgrind`` on PATH; takes a few minutes. Run:
python benchmarks/count_instructions.py [MESSAGES]
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys

from harness import machine_line


def routed(messages: int) -> int:
    """Send ``messages`` routed Data messages on the throughput benchmark's network; hops."""
    from bench_sim import converged_network, send_paced

    from peerlab.trace import Tracer

    net = converged_network(100)
    names = sorted(net.members)
    rng = random.Random(3)
    tracer = Tracer(kinds={"deliver"})
    for m in net.members.values():
        m.tracer = tracer
    send_paced(net, [rng.sample(names, 2) for _ in range(messages)], 1e-4)
    net.run(messages * 1e-4 + 2)
    return sum(e.fields["hops"] for e in tracer.events)


def bare(callbacks: int) -> int:
    """Run the bare SimPy loop for ``callbacks`` callbacks; returns ``callbacks``."""
    from bench_sim import bare_simpy

    if callbacks:
        bare_simpy(callbacks)
    return callbacks


def counted(side: str, amount: int) -> tuple[int, int]:
    """(instructions, work done) of one run of ``side`` under callgrind."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            os.path.abspath(__file__),
            "--inner",
            side,
            str(amount),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=1800,
    )
    collected = re.search(r"Collected : (\d+)", out.stderr)
    done = re.search(r"^DONE (\d+)$", out.stdout, re.MULTILINE)
    if collected is None or done is None:
        raise SystemExit(f"callgrind run of {side} gave no count:\n{out.stderr[-2000:]}")
    return int(collected.group(1)), int(done.group(1))


def per_unit(side: str, amount: int) -> tuple[float, int]:
    """Instructions per unit of work (hop or callback) and the units counted."""
    base, _ = counted(side, 0)
    total, done = counted(side, amount)
    return (total - base) / done, done


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("count_instructions.py needs valgrind on PATH")
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(machine_line())
    ours, hops = per_unit("routed", messages)
    theirs, _ = per_unit("bare", hops)
    print(
        f"routed Data: {ours:,.0f} instructions per hop ({messages} messages, {hops} hops); "
        f"bare SimPy: {theirs:,.0f} per callback; ratio {theirs / ours:.3f}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        work = {"routed": routed, "bare": bare}[sys.argv[2]]
        print(f"DONE {work(int(sys.argv[3]))}")
    else:
        main()
