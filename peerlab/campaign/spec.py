"""Campaign files: a base scenario, a grid of values over its key paths, seeds and metrics.

Loading validates every run the campaign holds before any runs: each grid point's scenario,
with each seed, is built and checked as ``peerlab check`` would, and an error names the grid
point, and the campaign file's line when the grid's value is to blame (else the base
scenario's). ``scenarios/README.md`` documents the format.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from peerlab.campaign.keypath import parse_key_path, set_key_path
from peerlab.campaign.metrics import canonical, is_metric, metric_names
from peerlab.campaign.store import run_key
from peerlab.errors import CampaignError, Problem, ScenarioError
from peerlab.scenario import Document, Scenario, build_scenario, packaged_names, read_document
from peerlab.scenario.convert import require
from peerlab.scenario.scalars import Name

#: the backends a campaign may run on (members placed across machines are not done yet)
BACKENDS = ("sim", "real")
DEFAULT_METRICS = ("delivered_ratio", "latency_p50", "convergence_p50", "control_bytes_per_member")


class CampaignSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A campaign file's keys; ``grid``, ``seeds`` and ``metrics`` have rules of their own."""

    campaign: Name | None = None
    description: str = ""
    scenario: Name
    grid: Any = msgspec.UNSET
    seeds: Any
    metrics: Any = msgspec.field(default_factory=lambda: list(DEFAULT_METRICS))
    backend: str = "sim"


@dataclass(frozen=True)
class Run:
    """One run of a campaign: grid point ``point``'s scenario with one seed."""

    point: int
    seed: int
    scenario: Scenario
    key: str


@dataclass(frozen=True)
class Campaign:
    """A validated campaign: its grid's columns (the key paths as written), the values of each
    point, the seeds, the metrics to keep, and every run, each with a valid scenario."""

    name: str
    source: str
    columns: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    backend: str
    runs: tuple[Run, ...]
    description: str = ""

    def params(self, point: int) -> dict[str, Any]:
        """Grid point ``point``'s values by column."""
        return dict(zip(self.columns, self.points[point], strict=True))

    def manifest(self) -> dict[str, Any]:
        """What the campaign folder keeps of the campaign: enough to build its table."""
        return {
            "campaign": self.name,
            "description": self.description,
            "source": self.source,
            "backend": self.backend,
            "columns": list(self.columns),
            "points": [list(p) for p in self.points],
            "seeds": list(self.seeds),
            "metrics": list(self.metrics),
            "runs": [[r.point, r.seed, r.key] for r in self.runs],
        }


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"1-10"``, ``"3,5,8"`` or a mix like ``"1-3,10"``; :class:`ValueError` says
    what is wrong."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ValueError(f"expected seeds like 1-10 or 3,5,8, got {text!r}") from None
        if last < first:
            raise ValueError(f"{part.strip()!r} is an empty range of seeds")
        seeds.extend(range(first, last + 1))
    return _unique_seeds(seeds)


def _unique_seeds(seeds: list[int]) -> list[int]:
    if not seeds:
        raise ValueError("expected at least one seed")
    seen: set[int] = set()
    for seed in seeds:
        if seed in seen:
            raise ValueError(f"seed {seed} is there twice")
        seen.add(seed)
    return seeds


def load_campaign(path: str | Path) -> Campaign:
    """Load a campaign file and validate every run it holds; :class:`ScenarioError` (a
    :class:`CampaignError` when a grid point is to blame) names the file, line and key path."""
    label = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CampaignError(f"cannot read campaign file: {exc.strerror}", file=label) from None
    doc = read_document(label, text)
    spec = require(doc, doc.data if doc.data is not None else {}, CampaignSpec, ())
    base = _base_document(doc, str(spec.scenario))
    seeds = _seeds(doc, spec.seeds)
    if spec.backend not in BACKENDS:
        raise doc.fail(
            ("backend",),
            f"unknown backend {spec.backend!r} (expected one of: {', '.join(BACKENDS)})",
        )
    grid = {} if spec.grid is msgspec.UNSET else _grid(doc, spec.grid)
    metrics = _metrics(doc, spec.metrics, grid)
    keys = list(grid)
    points = list(itertools.product(*grid.values()))
    runs = []
    for index, values in enumerate(points):
        blame = _Blame(doc, keys, values) if keys else None
        runs += _point_runs(base, index, seeds, spec.backend, blame)
    return Campaign(
        Path(label).stem if spec.campaign is None else str(spec.campaign),
        label,
        tuple(keys),
        tuple(points),
        tuple(seeds),
        tuple(metrics),
        spec.backend,
        tuple(runs),
        spec.description,
    )


def sweep_campaign(
    paths: Sequence[str | Path], seeds: Sequence[int], metrics: Sequence[str]
) -> Campaign:
    """A campaign of scenario files (its one column, ``scenario``) x seeds, as ``peerlab
    sweep`` runs it; each file's errors are its own."""
    runs = []
    for index, path in enumerate(paths):
        runs += _point_runs(read_document(path), index, seeds, "sim", None)
    return Campaign(
        "sweep",
        ", ".join(map(str, paths)),
        ("scenario",),
        tuple((str(p),) for p in paths),
        tuple(seeds),
        tuple(metrics),
        "sim",
        tuple(runs),
    )


def _base_document(doc: Document, name: str) -> Document:
    """The base scenario, relative to the campaign file, or a packaged one by bare name."""
    file = doc.base_dir / name
    if file.is_file():
        return read_document(file)
    if "/" not in name and name.removesuffix(".yaml") in packaged_names():
        return read_document(name)
    raise doc.fail(
        ("scenario",),
        f"no scenario file {str(file)!r}, and no packaged scenario {name!r} "
        f"(packaged: {', '.join(packaged_names())})",
    )


def _seeds(doc: Document, raw: Any) -> list[int]:
    path = ("seeds",)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise doc.fail(
            path, f"expected seeds like 1-{raw} or a list, got {raw} (for that one seed: [{raw}])"
        )
    try:
        if isinstance(raw, str):
            return parse_seeds(raw)
        if isinstance(raw, list):
            return _unique_seeds(require(doc, raw, list[int], path))
    except ValueError as exc:
        raise doc.fail(path, str(exc)) from None
    raise doc.fail(path, f"expected seeds like 1-10, 3,5,8 or a list, got {raw!r}")


def _grid(doc: Document, raw: Any) -> dict[str, list[Any]]:
    if not isinstance(raw, dict) or not raw:
        raise doc.fail(
            ("grid",),
            f"expected a mapping of key paths to lists of values, got {raw!r} "
            "(leave 'grid' out to run the base scenario alone)",
        )
    grid: dict[str, list[Any]] = {}
    for key, values in raw.items():
        path = ("grid", key)
        try:
            steps = parse_key_path(str(key))
        except ValueError as exc:
            raise doc.fail(path, str(exc)) from None
        if steps == ("seed",):
            raise doc.fail(path, "the seed is not a grid key: 'seeds' sets it")
        for other in grid:
            if _inside(key, other) or _inside(other, key):
                raise doc.fail(path, f"overlaps grid key {other!r}: give each value once")
        if not isinstance(values, list) or not values:
            raise doc.fail(
                path, f"expected a non-empty list of values, got {values!r} (one value: [v])"
            )
        shown = [json.dumps(v, sort_keys=True, default=str) for v in values]
        for i, text in enumerate(shown):
            if text in shown[:i]:
                raise doc.fail((*path, i), f"value {_show(values[i])} is there twice")
        grid[key] = values
    return grid


def _metrics(doc: Document, raw: Any, grid: dict[str, list[Any]]) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise doc.fail(("metrics",), f"expected a non-empty list of metric names, got {raw!r}")
    seen: dict[str, str] = {}
    for i, name in enumerate(raw):
        path = ("metrics", i)
        if not isinstance(name, str) or not is_metric(name):
            raise doc.fail(path, f"unknown metric {name!r} (metrics: {', '.join(metric_names())})")
        if canonical(name) in seen:
            raise doc.fail(path, f"{name!r} is the metric {seen[canonical(name)]!r} again")
        if name in grid or name in ("seed", "ok"):
            raise doc.fail(path, f"{name!r} is already a column of the table")
        seen[canonical(name)] = name
    return list(raw)


def _inside(key: str, other: str) -> bool:
    return key == other or key.startswith((f"{other}.", f"{other}["))


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


class _Blame:
    """Names a grid point in errors, and finds the grid key an error at a key path comes from:
    a path at or inside a value the point set, or a mapping setting it made."""

    def __init__(self, doc: Document, keys: list[str], values: tuple[Any, ...]) -> None:
        self.doc = doc
        self.assignments = [
            (key, parse_key_path(key), value) for key, value in zip(keys, values, strict=True)
        ]
        self.point = ", ".join(f"{key}={_show(value)}" for key, _, value in self.assignments)
        self.made: set[str] = set()

    def apply(self, data: dict[str, Any]) -> None:
        """Set the point's values in a copy of the base scenario's data."""
        self.made = set()
        for key, steps, value in self.assignments:
            try:
                self.made.update(set_key_path(data, steps, value))
            except ValueError as exc:
                raise CampaignError(
                    problems=[self._at_grid_key(str(exc), key, key, None)]
                ) from None

    def error(self, exc: ScenarioError, seed: int | None) -> CampaignError:
        """``exc``, raised by the point's scenario with ``seed``, with each of its problems
        naming the point (and the seed, when it is not None)."""
        return CampaignError(problems=[self._blame(problem, seed) for problem in exc.problems])

    def _blame(self, problem: Problem, seed: int | None) -> Problem:
        """``problem`` at the line of the grid key its key path comes from, if any."""
        path = problem.path or ""
        for key, _, _ in self.assignments:
            if _inside(path, key) or (path in self.made and _inside(key, path)):
                return self._at_grid_key(problem.reason, problem.path, key, seed)
        return self._at(problem.reason, problem.file, problem.line, problem.path, seed)

    def _at_grid_key(self, reason: str, path: str | None, key: str, seed: int | None) -> Problem:
        """A problem at grid key ``key``'s line in the campaign file."""
        return self._at(reason, self.doc.source, self.doc.lines.of(("grid", key)), path, seed)

    def _at(
        self, reason: str, file: str | None, line: int | None, path: str | None, seed: int | None
    ) -> Problem:
        point = self.point if seed is None else f"{self.point} with seed {seed}"
        where = f"grid point {point}" + (f": {path}" if path else "")
        return Problem(reason, file, line, where)


def _point_runs(
    base: Document, index: int, seeds: Sequence[int], backend: str, blame: _Blame | None
) -> list[Run]:
    """The runs of one grid point (``blame`` sets its values and names it in errors; None for
    the base scenario as it is)."""
    runs = []
    for n, seed in enumerate(seeds):
        if not isinstance(base.data, dict):
            build_scenario(base)  # not a mapping: the scenario's own error says so
        data = copy.deepcopy(base.data)
        data["seed"] = seed  # the seed drives every random choice, generated topologies included
        if blame is not None:
            blame.apply(data)
        try:
            scenario = build_scenario(base, data)
        except ScenarioError as exc:
            if blame is None:
                raise
            # the seed matters to the message only if an earlier one gave a valid scenario
            raise blame.error(exc, None if n == 0 else seed) from None
        runs.append(Run(index, seed, scenario, run_key(scenario, backend)))
    return runs
