"""networkx as the ground truth for routes.

Given the real links and the members' tables, say exactly where a table disagrees with the
shortest paths networkx computes: a destination missing or extra, a wrong hop count, or a next hop
that is not a neighbour on a shortest path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RouteLike = Any  # a Route, or {"next_hop": ..., "hops": ...}


def _unpack(route: RouteLike) -> tuple[str, int]:
    if isinstance(route, tuple):
        return route[0], route[1]
    return route["next_hop"], route["hops"]


def graph_of(members: Iterable[str], links: Iterable[tuple[str, str]]):
    """An undirected networkx graph of ``members`` joined by ``links``."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(members)
    g.add_edges_from(links)
    return g


class Oracle:
    """Shortest-path distances of one ground-truth graph, computed once by networkx."""

    def __init__(self, members: Iterable[str], links: Iterable[tuple[str, str]]) -> None:
        import networkx as nx

        self.graph = graph_of(members, links)
        self.dist: dict[str, dict[str, int]] = dict(nx.all_pairs_shortest_path_length(self.graph))
        self._neighbours = {m: set(self.graph.adj[m]) for m in self.graph}

    def errors(self, tables: Mapping[str, Mapping[str, RouteLike]], limit: int = 0) -> list[str]:
        """Every disagreement of ``tables`` with the truth (stop after ``limit`` if > 0)."""
        errors: list[str] = []
        g, dist = self.graph, self.dist
        for src in sorted(tables):
            if limit and len(errors) >= limit:
                break
            if src not in g:
                errors.append(f"{src}: not a member of the ground-truth graph")
                continue
            reach = dist[src]
            table = tables[src]
            if self._right(src, table):
                continue
            for d in sorted(set(reach) - set(table) - {src}):
                errors.append(f"{src}: no route to reachable {d} ({reach[d]} hops)")
            for d in sorted(set(table) - set(reach)):
                errors.append(f"{src}: route to unreachable {d}")
            for d in sorted(set(table) & set(reach)):
                hop, hops = _unpack(table[d])
                if hops != reach[d]:
                    errors.append(f"{src}->{d}: {hops} hops, shortest is {reach[d]}")
                elif not g.has_edge(src, hop):
                    errors.append(f"{src}->{d}: next hop {hop} is not a neighbour")
                elif dist[hop].get(d) != reach[d] - 1:
                    errors.append(f"{src}->{d}: next hop {hop} is not on a shortest path")
        return errors[:limit] if limit else errors

    def _right(self, src: str, table: Mapping[str, RouteLike]) -> bool:
        """Whether one table is entirely right (the quick check; :meth:`errors` says why not)."""
        reach, dist, neighbours = self.dist[src], self.dist, self._neighbours[src]
        if len(table) != len(reach) - 1 or src in table:
            return False
        for d, route in table.items():
            hop, hops = route if isinstance(route, tuple) else _unpack(route)
            if reach.get(d) != hops or hop not in neighbours or dist[hop].get(d) != hops - 1:
                return False
        return True

    def agrees(self, tables: Mapping[str, Mapping[str, RouteLike]]) -> bool:
        """Whether every table matches the truth."""
        return not self.errors(tables, limit=1)


def table_errors(
    tables: Mapping[str, Mapping[str, RouteLike]],
    links: Iterable[tuple[str, str]],
    members: Iterable[str] | None = None,
) -> list[str]:
    """Every disagreement between ``tables`` and networkx shortest paths over ``links``.

    ``members`` defaults to the keys of ``tables``; an empty list means the tables are right.
    """
    return Oracle(list(tables) if members is None else members, links).errors(tables)
