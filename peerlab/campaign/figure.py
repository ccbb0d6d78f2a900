"""A campaign's metric against one grid key: the mean over seeds with its 95% confidence
interval, one line per value of another key."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from peerlab.campaign.metrics import canonical
from peerlab.campaign.stats import mean_ci
from peerlab.campaign.table import read_table
from peerlab.errors import CampaignError


def draw_campaign(
    data: str | Path | Iterable[dict[str, Any]] | Any,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    ax: Any = None,
) -> dict[str, Any]:
    """Draw metric ``y`` against column ``x``, one line with error bars per value of ``hue``.

    ``data`` is a campaign folder (``y`` may then be any metric, in either spelling), or its
    table (rows or a DataFrame). Each point is the mean over the seeds' runs that have a value,
    its bar the 95% confidence interval (Student's t; none for a single run). Returns the axes
    and, per hue value, the series drawn (``x``, ``mean``, ``ci`` half-widths, ``n``) and its
    matplotlib ``ErrorbarContainer``.
    """
    import matplotlib.pyplot as plt

    if isinstance(data, str | Path):
        table = read_table(data, [y])
        rows, columns = table.rows, table.columns
    else:
        rows = data.to_dict("records") if hasattr(data, "to_dict") else list(data)
        columns = list(rows[0]) if rows else []
    for flag, name in (("x", x), ("hue", hue)):
        if name is not None and name not in columns:
            raise CampaignError(f"{flag}: no column {name!r} (columns: {', '.join(columns)})")
    y_column = next((c for c in columns if c == y or canonical(c) == canonical(y)), None)
    if y_column is None:
        raise CampaignError(f"y: no column {y!r} (columns: {', '.join(columns)})")
    groups: dict[Any, dict[Any, list[float]]] = {}
    for row in rows:
        value = row[y_column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        by_x = groups.setdefault(_key(row[hue]) if hue else y, {})
        by_x.setdefault(_key(row[x]), []).append(float(value))
    if not groups:
        raise CampaignError(f"y: no run has a value of {y!r} (of {len(rows)} runs)")
    xs = _ordered(dict.fromkeys(v for by_x in groups.values() for v in by_x))
    numeric = all(isinstance(v, int | float) for v in xs)
    position = {v: (v if numeric else i) for i, v in enumerate(xs)}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    series: dict[Any, dict[str, list]] = {}
    containers = {}
    for h in _ordered(groups):
        points = [(v, *mean_ci(groups[h][v]), len(groups[h][v])) for v in xs if v in groups[h]]
        series[h] = {
            "x": [p[0] for p in points],
            "mean": [p[1] for p in points],
            "ci": [p[2] for p in points],
            "n": [p[3] for p in points],
        }
        containers[h] = ax.errorbar(
            [position[v] for v in series[h]["x"]],
            series[h]["mean"],
            yerr=series[h]["ci"],
            marker="o",
            capsize=3,
            label=f"{hue}={h}" if hue else y,
        )
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean, 95% CI)")
    ax.legend(fontsize="small")
    return {"ax": ax, "series": series, "containers": containers}


def _key(value: Any) -> Any:
    if hasattr(value, "item"):  # a numpy number, from a DataFrame
        value = value.item()
    # a grid value that is a list or mapping cannot key a group; its text can
    return value if isinstance(value, str | int | float | bool) else str(value)


def _ordered(values: Iterable[Any]) -> list[Any]:
    """Numbers in order; anything else in the order the table has it (the grid's)."""
    values = list(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return values
