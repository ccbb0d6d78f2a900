"""Campaign throughput: runs per minute of a campaign of small scenarios on a local process
pool (one process per CPU, as `peerlab sweep` ran before campaigns) and on Dask LocalClusters of
1 and 2 worker processes, in the same run; and Dask's overhead per task.

Every mode runs the same runs (``execute_run`` on each, records stored by the caller), into a
fresh folder each round, on pools and clusters started and warmed beforehand (their start-up is
reported apart). A round runs every mode back to back, in alternating order; runs per minute are
the median (and best) over rounds, the share of the pool's the median of the rounds' ratios.

Run: python benchmarks/bench_campaign.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from harness import machine_line

from peerlab.campaign import execute_run, load_campaign, local_cluster, run_campaign
from peerlab.campaign.store import CampaignFolder

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "campaigns" / "base.yaml"
CAMPAIGN = f"""\
campaign: bench
scenario: {BASE}
grid:
  members.count: [20, 30, 40]
  topology.generator.degree: [3, 4]
seeds: 1-10
"""
TRIVIAL_TASKS = 2_000
CPUS = os.cpu_count() or 1


def on_pool(pool: ProcessPoolExecutor, campaign, out: Path) -> None:
    """The campaign's runs on a process pool, each record stored as it comes."""
    folder = CampaignFolder(out)
    folder.create(campaign.manifest())
    futures = {pool.submit(execute_run, r.scenario, campaign.backend): r for r in campaign.runs}
    for future in as_completed(futures):
        folder.store({"key": futures[future].key, **future.result()})


def per_task_overhead(client, pool: ProcessPoolExecutor) -> tuple[float, float]:
    """Seconds per trivial task (no work): through Dask, and through the pool."""
    t0 = time.perf_counter()
    client.gather(client.map(abs, range(TRIVIAL_TASKS), pure=False))
    dask = (time.perf_counter() - t0) / TRIVIAL_TASKS
    t0 = time.perf_counter()
    list(pool.map(abs, range(TRIVIAL_TASKS)))
    return dask, (time.perf_counter() - t0) / TRIVIAL_TASKS


def main() -> None:
    from distributed import Client

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(machine_line(), f" {CPUS} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bench.yaml"
        file.write_text(CAMPAIGN)
        campaign = load_campaign(file)
        runs = len(campaign.runs)
        print(f"campaign: {runs} runs of {BASE.name} (20-40 members, degree 3-4, 10 seeds)")
        starts = {}
        t0 = time.perf_counter()
        with ProcessPoolExecutor(CPUS) as pool:
            list(pool.map(abs, range(CPUS)))
            starts["pool"] = time.perf_counter() - t0
            with local_cluster(1) as one, local_cluster(2) as two, Client(two) as client:
                starts["dask"] = time.perf_counter() - t0 - starts["pool"]
                modes = {
                    f"local pool ({CPUS} processes)": lambda out: on_pool(pool, campaign, out),
                    "LocalCluster, 1 worker": lambda out: run_campaign(
                        campaign, out, scheduler=one.scheduler_address
                    ),
                    "LocalCluster, 2 workers": lambda out: run_campaign(
                        campaign, out, scheduler=two.scheduler_address
                    ),
                }
                for mode in modes.values():  # warm: every process imports peerlab
                    mode(Path(tempfile.mkdtemp(dir=tmp)))
                times: dict[str, list[float]] = {name: [] for name in modes}
                for i in range(rounds):
                    order = list(modes) if i % 2 == 0 else list(reversed(modes))
                    for name in order:
                        t = time.perf_counter()
                        modes[name](Path(tempfile.mkdtemp(dir=tmp)))
                        times[name].append(time.perf_counter() - t)
                dask_task, pool_task = per_task_overhead(client, pool)
    baseline = next(iter(times))
    print(f"\n{'mode':<28} {'runs/min':>9} {'best':>6} {'of pool':>8}   rounds (s)")
    for name, seconds in times.items():
        # each round runs every mode back to back: the ratio within a round is what this
        # drifting, shared machine lets one compare
        ratio = statistics.median(p / s for p, s in zip(times[baseline], seconds, strict=True))
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(
            f"{name:<28} {60 * runs / statistics.median(seconds):9.0f} "
            f"{60 * runs / min(seconds):6.0f} {ratio:8.0%}   {shown}"
        )
    print(
        f"\nper trivial task: Dask {dask_task * 1e3:.2f} ms, pool {pool_task * 1e3:.3f} ms "
        f"(Dask's overhead per task: {(dask_task - pool_task) * 1e3:.2f} ms)"
    )
    print(f"start-up: pool {starts['pool']:.2f} s, both LocalClusters {starts['dask']:.2f} s")
    print("load average after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print("goal: LocalCluster of 2 workers >= 90% of the pool's runs per minute")


if __name__ == "__main__":
    main()
