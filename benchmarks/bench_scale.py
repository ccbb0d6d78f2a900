"""Scale of the real backends: the largest network that converges and agrees with networkx.

For each backend and size, runs ``scale.yaml`` with N members (a random 4-regular graph, 10 ms
links, 2 ms jitter) from a cold start, one traffic burst once they should have converged
(N/20 s), and reports:
whether every table matched networkx's shortest paths at the end, when the start converged
(scenario seconds), the setup (wall seconds until the clock starts: processes spawned, members
created, links dialled), the CPU used (this process and its children), peak memory per member
and whether the run kept time; against the baseline, the simulator's start convergence for the
same scenario in the same run. Run: python benchmarks/bench_scale.py [--real 100 200 400]
[--proc 50 100 200] [--members-per-process K] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

from harness import machine_line

from peerlab.runner import run
from peerlab.scenario import Scenario, load_scenario

SCENARIO = Path(__file__).with_name("scale.yaml")


def scenario_of(n: int) -> Scenario:
    """scale.yaml with ``n`` members, its burst at ``n``/20 seconds (when a cold start of that
    size has had time to converge here)."""
    text = SCENARIO.read_text().replace("count: 400", f"count: {n}")
    return load_scenario(SCENARIO, text.replace("at: 20s", f"at: {max(5.0, n / 20)}s"))


def descendants_rss() -> int:
    """Resident bytes of this process's descendants now (the proc backend's fork server and
    the workers it forked; pages they still share are counted in each)."""
    parents, rss = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[pid] = fields.get("PPid", "").strip()
        rss[pid] = int(fields["VmRSS"].split()[0]) * 1024 if "VmRSS" in fields else 0
    ours, grew = {str(os.getpid())}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= more
        grew = bool(more)
    return sum(rss[pid] for pid in ours - {str(os.getpid())})


def own_rss() -> int:
    """Resident bytes of this process now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(backend: str, n: int, per_process: int | None) -> dict[str, Any]:
    """One cold start of ``n`` members on ``backend``."""
    scenario = scenario_of(n)
    base = own_rss()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], descendants_rss() + own_rss() - base)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, first = time.monotonic(), []
    cpu0 = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]

    def told(now: float, end: float, applied: str | None) -> None:
        if not first:
            first.append(time.monotonic() - started)

    options = {"members_per_process": per_process} if backend == "proc" and per_process else {}
    result = run(scenario, backend, progress=told, **options)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    cpu = sum(
        (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        for before, after in zip(
            cpu0,
            [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)],
            strict=True,
        )
    )
    start = result.convergence[0]
    routes = next(e for e in result.expectations if e["name"] == "routes")
    return {
        "backend": backend,
        "members": n,
        "agrees": routes["ok"],
        "start_converged_at": start["converged_at"],
        "setup_s": round(first[0], 2) if first else None,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "rss_per_member_mib": round(peak[0] / n / 2**20, 2),
        "timing_ok": result.timing["ok"],
        "delivered": f"{len(result.delivered)}/{len(result.messages)}",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real", type=int, nargs="*", default=[100, 200, 400])
    p.add_argument("--proc", type=int, nargs="*", default=[50, 100, 200])
    p.add_argument("--members-per-process", type=int, default=None)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    print(machine_line())
    rows, sim = [], {}
    for backend, sizes in (("real", args.real), ("proc", args.proc)):
        for n in sizes:
            if n not in sim:
                sim[n] = measure("sim", n, None)["start_converged_at"]
            row = measure(backend, n, per_process=args.members_per_process)
            row["sim_start_converged_at"] = sim[n]
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
