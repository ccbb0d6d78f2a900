"""A campaign's results as a tidy table: one row per run done, with a column per grid key (as
written), ``seed``, a column per metric (as written) and ``ok``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from peerlab.campaign.metrics import canonical, is_metric, metric_names
from peerlab.campaign.store import CampaignFolder
from peerlab.errors import CampaignError


@dataclass(frozen=True)
class Table:
    """The rows of a campaign's table, its columns in order, and how many of the campaign's
    runs are not done yet (they have no row)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    missing: int


def read_table(out: str | Path, metrics: Sequence[str] | None = None) -> Table:
    """The table of campaign folder ``out``, with the campaign's metrics or ``metrics`` (any
    metric may be asked for: every run keeps them all)."""
    folder = CampaignFolder(out)
    manifest = folder.manifest()
    names = list(manifest["metrics"] if metrics is None else metrics)
    for name in names:
        if not is_metric(name):
            raise CampaignError(f"unknown metric {name!r} (metrics: {', '.join(metric_names())})")
    rows = []
    for point, seed, key in manifest["runs"]:
        record = folder.record(key)
        if record is None:
            continue
        row = dict(zip(manifest["columns"], manifest["points"][point], strict=True))
        row["seed"] = seed
        row.update((name, record["metrics"].get(canonical(name))) for name in names)
        row["ok"] = record["ok"]
        rows.append(row)
    columns = [*manifest["columns"], "seed", *names, "ok"]
    return Table(columns, rows, len(manifest["runs"]) - len(rows))


def campaign_table(out: str | Path, metrics: Sequence[str] | None = None) -> Any:
    """The table of campaign folder ``out`` (see :func:`read_table`): a pandas DataFrame if
    pandas is installed, else a list of dicts, one per row."""
    table = read_table(out, metrics)
    try:
        import pandas
    except ImportError:
        return table.rows
    return pandas.DataFrame(table.rows, columns=table.columns)


def write_table(table: Table, path: str | Path) -> None:
    """Write ``table`` as CSV, or as Parquet (which needs pyarrow) if ``path`` ends in
    ``.parquet``."""
    path = Path(path)
    if path.suffix == ".parquet":
        _write_parquet(table, path)
        return
    with open(path, "w", newline="") as out:
        write_csv(table, out)


def write_csv(table: Table, out: TextIO) -> None:
    """Write ``table`` as CSV to the text stream ``out``."""
    writer = csv.writer(out)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(_cell(row[c]) for c in table.columns)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list | dict) else value


def _write_parquet(table: Table, path: Path) -> None:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise CampaignError(
            f"cannot write {str(path)!r}: Parquet needs pyarrow (pip install pyarrow)"
        ) from None
    arrays = {}
    for column in table.columns:
        values = [row[column] for row in table.rows]
        try:
            arrays[column] = pyarrow.array(values)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
            # a grid column mixing kinds of values (5ms and 0.02): kept as written, as text
            arrays[column] = pyarrow.array([None if v is None else str(_cell(v)) for v in values])
    pyarrow.parquet.write_table(pyarrow.table(arrays), path)
