"""Shortest-path next-hop tables by breadth-first search.

Pure functions over an adjacency mapping ``{member: iterable of neighbours}``. Neighbours are
visited in sorted id order, so ties between equally short paths break the same way everywhere:
two members (or two worlds) that hold the same graph compute identical tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple


class Route(NamedTuple):
    """How to reach one destination: the neighbour to hand the message to, and the hop count."""

    next_hop: str
    hops: int


class ShortestPathTree(NamedTuple):
    """The BFS tree from one source: distance and first hop of every reachable member."""

    source: str
    dist: dict[str, int]
    first_hop: dict[str, str]

    def routes(self) -> dict[str, Route]:
        """The next-hop table this tree implies (the source itself is not a destination)."""
        dist = self.dist
        make = tuple.__new__
        return {dst: make(Route, (hop, dist[dst])) for dst, hop in self.first_hop.items()}

    def may_change(self, u: str, v: str, added: bool) -> bool:
        """Whether adding (or removing) the edge u-v can alter this tree.

        Adding an edge between two members at the same distance, or between two unreachable
        members, changes nothing. Removing an edge can only matter if it joins two consecutive
        levels (only those can be tree edges). Everything else might (a new edge one level
        apart can win a sorted-order tie). No parent map is kept: a large network holds one
        tree per member, and the map would cost as much memory as the distances.
        """
        du, dv = self.dist.get(u), self.dist.get(v)
        if added:
            if du is None and dv is None:
                return False
            return du != dv
        return du is not None and dv is not None and abs(du - dv) == 1


def shortest_path_tree(adjacency: Mapping[str, Iterable[str]], source: str) -> ShortestPathTree:
    """BFS from ``source`` visiting neighbours in sorted order; see :class:`ShortestPathTree`.

    Level by level: the members of one level are expanded in queue order, and each one's newly
    found neighbours join the next level in sorted order. That is exactly BFS with sorted
    neighbour lists, but only the newly found neighbours are ever sorted.
    """
    dist = {source: 0}
    first: dict[str, str] = {}
    get = adjacency.get
    frontier = [source]
    level = 0
    while frontier:
        level += 1
        following: list[str] = []
        for u in frontier:
            found = [v for v in get(u, ()) if v not in dist]
            if not found:
                continue
            if len(found) > 1:
                found.sort()
            hop = first.get(u)
            for v in found:
                dist[v] = level
                first[v] = v if hop is None else hop
            following += found
        frontier = following
    return ShortestPathTree(source, dist, first)


def next_hops(adjacency: Mapping[str, Iterable[str]], source: str) -> dict[str, Route]:
    """Per reachable destination (other than ``source``): next hop and hop count."""
    return shortest_path_tree(adjacency, source).routes()
