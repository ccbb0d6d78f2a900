"""Sweeps: scenario files x seeds in simulation, run as a campaign whose one column is the
file (see :mod:`peerlab.campaign`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peerlab.campaign import read_table, run_campaign
from peerlab.campaign.spec import sweep_campaign
from peerlab.console import render, table

#: the metrics a sweep shows
SWEEP_METRICS = ("delivered_ratio", "convergence_mean", "convergence_max")


def sweep(
    paths: Sequence[str | Path],
    seeds: Sequence[int],
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    serial: bool = False,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run every scenario file with every seed in sim, into campaign folder ``out``, where
    :func:`~peerlab.campaign.run_campaign` would run them; runs done before are not run again.

    Returns one row per run (``scenario``, ``seed``, the :data:`SWEEP_METRICS`, ``ok``),
    ordered by file then seed.
    """
    campaign = sweep_campaign(paths, seeds, SWEEP_METRICS)
    run_campaign(
        campaign, out, workers=workers, scheduler=scheduler, serial=serial, progress=progress
    )
    return read_table(out).rows


def format_sweep(rows: list[dict[str, Any]]) -> str:
    """The sweep as an aligned table with a summary line."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}ms"

    shown = table("scenario", ">seed", ">delivered", ">conv mean", ">conv max", "ok")
    for r in rows:
        ratio = r["delivered_ratio"]
        shown.add_row(
            Path(r["scenario"]).stem,
            str(r["seed"]),
            "-" if ratio is None else f"{ratio:.1%}",
            ms(r["convergence_mean"]),
            ms(r["convergence_max"]),
            "yes" if r["ok"] else "NO",
        )
    passed = sum(r["ok"] for r in rows)
    return render(shown, f"{passed}/{len(rows)} runs met their expectations")
