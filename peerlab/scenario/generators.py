"""Topology generators: ``topology.generator`` makes the scenario's links with networkx."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from peerlab.scenario.convert import Problems
from peerlab.scenario.model import LinkParams, LinkSpec

if TYPE_CHECKING:
    import networkx as nx

PATH = ("topology", "generator")
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class Generator(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """``topology.generator``: a ``kind`` of graph over the members, its parameters, and the
    seed of its random choices (unset: drawn from the scenario's seed)."""

    kind: str
    degree: int | UnsetType = UNSET
    p: Probability | UnsetType = UNSET
    m: int | UnsetType = UNSET
    k: int | UnsetType = UNSET
    rows: int | UnsetType = UNSET
    cols: int | UnsetType = UNSET
    seed: int | UnsetType = UNSET


#: A generator's problem of shape (at a key below ``topology.generator``), or None.
ShapeCheck = Callable[[Generator, int], tuple[tuple[str, ...], str] | None]


@dataclass(frozen=True)
class GeneratorKind:
    """What a kind of generator takes and makes: its parameters, a check of the whole (given
    the number of members) and its graph over members ``0..n-1`` (from networkx, the spec,
    the number of members and the seed)."""

    params: tuple[str, ...]
    graph: Callable[[Any, Generator, int, int], nx.Graph]
    shape: ShapeCheck = lambda spec, n: None


def _ring_size(spec: Generator, n: int) -> tuple[tuple[str, ...], str] | None:
    return ((), f"a ring needs at least 3 members, got {n}") if n < 3 else None


def _grid_size(spec: Generator, n: int) -> tuple[tuple[str, ...], str] | None:
    places = (spec.rows or 0) * (spec.cols or 0)
    if places != n:
        return (), f"grid {spec.rows}x{spec.cols} has {places} places for {n} members"
    return None


def _even_degrees(spec: Generator, n: int) -> tuple[tuple[str, ...], str] | None:
    if (spec.degree or 0) * n % 2:
        return ("degree",), f"degree x members must be even, got {spec.degree} x {n}"
    return None


def _grid(nx: Any, spec: Generator, n: int, seed: int) -> nx.Graph:
    return nx.convert_node_labels_to_integers(
        nx.grid_2d_graph(spec.rows, spec.cols), ordering="sorted"
    )


#: Every generator kind, in the order messages list them.
GENERATORS: dict[str, GeneratorKind] = {
    "line": GeneratorKind((), lambda nx, spec, n, seed: nx.path_graph(n)),
    "ring": GeneratorKind((), lambda nx, spec, n, seed: nx.cycle_graph(n), _ring_size),
    "star": GeneratorKind((), lambda nx, spec, n, seed: nx.star_graph(n - 1)),
    "grid_2d": GeneratorKind(("rows", "cols"), _grid, _grid_size),
    "complete": GeneratorKind((), lambda nx, spec, n, seed: nx.complete_graph(n)),
    "random_regular": GeneratorKind(
        ("degree",),
        lambda nx, spec, n, seed: nx.random_regular_graph(spec.degree, n, seed=seed),
        _even_degrees,
    ),
    "erdos_renyi": GeneratorKind(
        ("p",), lambda nx, spec, n, seed: nx.gnp_random_graph(n, spec.p, seed=seed)
    ),
    "barabasi_albert": GeneratorKind(
        ("m",), lambda nx, spec, n, seed: nx.barabasi_albert_graph(n, spec.m, seed=seed)
    ),
    "watts_strogatz": GeneratorKind(
        ("k", "p"), lambda nx, spec, n, seed: nx.watts_strogatz_graph(n, spec.k, spec.p, seed=seed)
    ),
}
#: The least and greatest value of each integer parameter, for ``n`` members.
_RANGES: dict[str, Callable[[int], tuple[int, int]]] = {
    "degree": lambda n: (0, n - 1),
    "m": lambda n: (1, n - 1),
    "k": lambda n: (1, n - 1),
    "rows": lambda n: (1, n),
    "cols": lambda n: (1, n),
}
_PARAMETERS = ("degree", "p", "m", "k", "rows", "cols")


def generated_links(
    spec: Generator,
    members: list[str],
    defaults: LinkParams,
    scenario_seed: int,
    problems: Problems,
) -> list[LinkSpec] | None:
    """The links ``spec`` makes over ``members`` (all with the ``defaults``), or None after
    adding to ``problems`` what does not fit (or if its structure had problems already)."""
    if problems.within(PATH):
        return None
    kind = GENERATORS.get(spec.kind)
    if kind is None:
        problems.add(
            (*PATH, "kind"),
            f"unknown generator {spec.kind!r} (expected one of: {', '.join(GENERATORS)})",
        )
        return None
    n = len(members)
    before = len(problems)
    for key in _PARAMETERS:
        value = getattr(spec, key)
        if value is UNSET:
            if key in kind.params:
                problems.add(PATH, f"generator {spec.kind!r} needs {key!r}")
        elif key not in kind.params:
            takes = ", ".join(sorted(kind.params)) or "nothing"
            problems.add(
                (*PATH, key), f"generator {spec.kind!r} takes no {key!r} (it takes: {takes})"
            )
        elif key in _RANGES:
            lo, hi = _RANGES[key](n)
            if not lo <= value <= hi:
                problems.add(
                    (*PATH, key), f"{key} must be in [{lo}, {hi}] for {n} members, got {value}"
                )
    if len(problems) == before and (shape := kind.shape(spec, n)) is not None:
        where, reason = shape
        problems.add((*PATH, *where), reason)
    if len(problems) > before:
        return None
    import networkx

    seed = random.Random(scenario_seed).randrange(2**31) if spec.seed is UNSET else spec.seed
    graph = kind.graph(networkx, spec, n, seed)
    return [LinkSpec(members[u], members[v], defaults) for u, v in sorted(graph.edges)]
