"""Sweeps: many scenarios x seeds in simulation, fanned out over local processes."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from peerlab.errors import PeerlabError


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"1-10"``, ``"3,5,8"`` or a mix like ``"1-3,10"``."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            if sep:
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(lo))
        except ValueError:
            raise PeerlabError(
                f"--seeds: expected numbers like 1-10 or 3,5,8, got {text!r}"
            ) from None
    if not seeds:
        raise PeerlabError(f"--seeds: no seeds in {text!r}")
    return seeds


def summarise(path: str, seed: int) -> dict[str, Any]:
    """Run one scenario file with one seed in sim; return a small picklable summary."""
    from peerlab.runner import run

    result = run(path, "sim", seed=seed)
    took = [
        c["converged_at"] - c["at"] for c in result.convergence if c["converged_at"] is not None
    ]
    sent = len(result.messages)
    return {
        "scenario": result.scenario,
        "file": path,
        "seed": seed,
        "ok": result.ok,
        "delivered": len(result.delivered) / sent if sent else None,
        "convergence_mean": statistics.mean(took) if took else None,
        "convergence_max": max(took) if took else None,
        "failed": [e["name"] for e in result.expectations if not e["ok"]],
        "wall_time": result.wall_time,
    }


def sweep(
    paths: Sequence[str],
    seeds: Iterable[int],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every scenario file with every seed in sim, ``jobs`` processes at a time.

    Returns one summary per run (see :func:`summarise`), ordered by file then seed.
    """
    from peerlab.scenario import load_scenario

    for path in paths:
        load_scenario(path)  # bad input fails here, once, with its own message
    tasks = [(str(p), s) for p in paths for s in seeds]
    jobs = jobs or min(len(tasks), os.cpu_count() or 1)
    out: list[dict[str, Any]] = []
    if jobs <= 1:
        for i, task in enumerate(tasks):
            out.append(summarise(*task))
            if progress:
                progress(i + 1, len(tasks))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(summarise, *task) for task in tasks]
            for i, future in enumerate(as_completed(futures)):
                out.append(future.result())
                if progress:
                    progress(i + 1, len(tasks))
    order = {task: i for i, task in enumerate(tasks)}
    return sorted(out, key=lambda r: order[(r["file"], r["seed"])])


def format_sweep(rows: list[dict[str, Any]]) -> str:
    """The sweep as an aligned table with a summary line."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}ms"

    lines = [f"{'scenario':<20} {'seed':>5} {'delivered':>9} {'conv mean':>9} {'conv max':>9}  ok"]
    for r in rows:
        delivered = "-" if r["delivered"] is None else f"{r['delivered']:.1%}"
        mark = "yes" if r["ok"] else "NO (" + ", ".join(r["failed"]) + ")"
        lines.append(
            f"{r['scenario'][:20]:<20} {r['seed']:>5} {delivered:>9} "
            f"{ms(r['convergence_mean']):>9} {ms(r['convergence_max']):>9}  {mark}"
        )
    passed = sum(r["ok"] for r in rows)
    lines.append(f"\n{passed}/{len(rows)} runs met their expectations")
    return "\n".join(lines)
