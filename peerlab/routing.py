"""Shortest-path next-hop tables by breadth-first search.

Pure functions over a graph of numbered members: ``adjacency[u]`` lists the numbers u claims as
neighbours and ``names[u]`` is u's id. Given ``listed`` (``listed[v]``: what v claims, as a
container), an edge u-v counts only when v lists u too: the link-state two-way check, made as the
search meets each edge, so a database needs no graph of its own beside the adverts it holds.
Ties between equally short paths break as in a BFS that visits neighbours in sorted id order, so
two members (or two worlds) that hold the same adverts compute identical tables.
:func:`next_hops` does the same for a plain ``{id: neighbours}`` map.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from itertools import compress
from operator import and_, ne, or_
from typing import NamedTuple


class Route(NamedTuple):
    """How to reach one destination: the neighbour to hand the message to, and the hop count."""

    next_hop: str
    hops: int


class ShortestPathTree(NamedTuple):
    """The BFS tree from one source, indexed by member number.

    ``dist[v]`` is v's hop count and ``first_hop[v]`` the number of the neighbour of the source
    that starts v's path; both are -1 where v is unreachable (and the source's own first hop is
    -1). Members numbered beyond the end of the lists are unreachable too.
    """

    source: int
    dist: list[int]
    first_hop: list[int]
    reachable: int

    def reaches(self, v: int) -> bool:
        """Whether member number ``v`` is reachable (the source reaches itself)."""
        return v < len(self.dist) and self.dist[v] >= 0

    def routes(self, names: Sequence[str]) -> dict[str, Route]:
        """The next-hop table this tree implies, by member id (the source is not a destination).

        Routes are immutable, so destinations with the same first hop and distance share one.
        """
        first, dist = self.first_hop, self.dist
        reached = list(map((-1).__lt__, first))
        if not any(reached):
            return {}
        make = tuple.__new__
        shared = {
            (hop, d): make(Route, (names[hop], d))
            for hop in set(compress(first, reached))
            for d in range(1, max(dist) + 1)
        }
        pairs = zip(compress(first, reached), compress(dist, reached), strict=True)
        return dict(zip(compress(names, reached), map(shared.__getitem__, pairs), strict=True))

    def differences(self, old: ShortestPathTree) -> tuple[int, int]:
        """Against ``old``: how many members' route changed, and how many of those were lost."""
        n = max(len(self.dist), len(old.dist))
        hop, dist = _padded(self.first_hop, n), _padded(self.dist, n)
        old_hop, old_dist = _padded(old.first_hop, n), _padded(old.dist, n)
        changed = sum(map(or_, map(ne, hop, old_hop), map(ne, dist, old_dist)))
        lost = sum(map(and_, map((-1).__eq__, hop), map((-1).__ne__, old_hop)))
        return changed, lost

    def delta(self, old: ShortestPathTree, names: Sequence[str]) -> tuple[str | int | None, ...]:
        """Against ``old``: each destination whose route changed, flat as ``(destination,
        next_hop, hops)`` triples; a destination no longer reachable has ``None, None``."""
        n = max(len(self.dist), len(old.dist))
        hop, dist = _padded(self.first_hop, n), _padded(self.dist, n)
        old_hop, old_dist = _padded(old.first_hop, n), _padded(old.dist, n)
        out: list[str | int | None] = []
        for v in compress(range(n), map(or_, map(ne, hop, old_hop), map(ne, dist, old_dist))):
            if v != self.source:
                h = hop[v]
                out += (names[v], names[h], dist[v]) if h >= 0 else (names[v], None, None)
        return tuple(out)

    def may_change(self, u: int, v: int, added: bool) -> bool:
        """Whether adding (or removing) the edge u-v can alter this tree.

        Adding an edge between two members at the same distance, or between two unreachable
        members, changes nothing. Removing an edge can only matter if it joins two consecutive
        levels (only those can be tree edges). Everything else might (a new edge one level
        apart can win a sorted-order tie). No parent map is kept: a large network holds one
        tree per member, and the map would cost as much memory as the distances.
        """
        dist = self.dist
        du = dist[u] if u < len(dist) else -1
        dv = dist[v] if v < len(dist) else -1
        if added:
            return du != dv
        return du >= 0 and dv >= 0 and abs(du - dv) == 1


def _padded(values: list[int], n: int) -> list[int]:
    return values if len(values) == n else values + [-1] * (n - len(values))


def shortest_path_tree(
    adjacency: Sequence[Sequence[int]],
    source: int,
    names: Sequence[str],
    listed: Sequence[Container[int]] | None = None,
) -> ShortestPathTree:
    """BFS from member number ``source``; see :class:`ShortestPathTree`.

    With ``listed``, an edge u-v counts only if ``u in listed[v]``; the check is made only on
    edges to members not yet reached, so it costs little beside the search. Without it, every
    edge of ``adjacency`` counts.

    A BFS with sorted neighbour lists queues level 1 in sorted order and every later level as
    the children of level 1's first member, then those of its second, and so on: each level is
    grouped by first hop, the groups in sorted order. So a member's first hop is the smallest
    first hop among all its shortest paths, whatever order the other neighbour lists are in:
    only the source's own neighbours need sorting.
    """
    n = len(adjacency)
    first = [-1] * n
    dist = [-1] * n
    if source >= n:
        return ShortestPathTree(source, dist, first, 0)
    if listed is None:
        listed = [range(n)] * n  # every member lists everyone: each edge passes
    dist[source] = 0
    level1 = sorted(
        {v for v in adjacency[source] if v != source and source in listed[v]},
        key=names.__getitem__,
    )
    for v in level1:
        first[v] = v
        dist[v] = 1
    first[source] = source  # marks it seen; reset below
    reachable = len(level1)
    frontier = level1
    level = 1
    while frontier:
        level += 1
        found: list[int] = []
        add = found.append
        for u in frontier:
            hop = first[u]
            for v in adjacency[u]:
                if first[v] < 0 and u in listed[v]:
                    first[v] = hop
                    add(v)
        for v in found:
            dist[v] = level
        reachable += len(found)
        frontier = found
    first[source] = -1
    return ShortestPathTree(source, dist, first, reachable)


def numbered(adjacency: Mapping[str, Iterable[str]]) -> tuple[list[list[int]], list[str]]:
    """A ``{id: neighbours}`` map as numbered adjacency lists and the ids they number."""
    number = {u: i for i, u in enumerate(adjacency)}
    for vs in adjacency.values():
        for v in vs:
            if v not in number:
                number[v] = len(number)
    lists = [[number[v] for v in vs] for vs in adjacency.values()]
    lists += [[] for _ in range(len(number) - len(lists))]
    return lists, list(number)


def next_hops(adjacency: Mapping[str, Iterable[str]], source: str) -> dict[str, Route]:
    """Per reachable destination (other than ``source``): next hop and hop count.

    The search of :func:`shortest_path_tree` made directly on the ids of a plain map, without
    numbering it first: level 1 sorted, every later level grouped by first hop, so ties break
    the same way. Every listed edge counts (no two-way check).
    """
    if source not in adjacency:
        return {}
    level1 = sorted({v for v in adjacency[source] if v != source})
    table = {v: Route(v, 1) for v in level1}
    table[source] = Route(source, 0)  # marks it seen; removed below
    neighbours = adjacency.get
    frontier, level = level1, 1
    while frontier:
        level += 1
        shared = {hop: Route(hop, level) for hop in level1}  # one Route per first hop and level
        found: list[str] = []
        add = found.append
        for u in frontier:
            route = shared[table[u].next_hop]
            for v in neighbours(u, ()):
                if v not in table:
                    table[v] = route
                    add(v)
        frontier = found
    del table[source]
    return table
