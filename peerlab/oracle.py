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
    if isinstance(route, Mapping):
        return route["next_hop"], route["hops"]
    return route[0], route[1]


def graph_of(members: Iterable[str], links: Iterable[tuple[str, str]]):
    """An undirected networkx graph of ``members`` joined by ``links``."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(members)
    g.add_edges_from(links)
    return g


def table_errors(
    tables: Mapping[str, Mapping[str, RouteLike]],
    links: Iterable[tuple[str, str]],
    members: Iterable[str] | None = None,
) -> list[str]:
    """Every disagreement between ``tables`` and networkx shortest paths over ``links``.

    ``members`` defaults to the keys of ``tables``; an empty list means the tables are right.
    """
    import networkx as nx

    members = list(tables) if members is None else list(members)
    g = graph_of(members, links)
    errors: list[str] = []
    for src in sorted(tables):
        if src not in g:
            errors.append(f"{src}: not a member of the ground-truth graph")
            continue
        dist = nx.single_source_shortest_path_length(g, src)
        table = tables[src]
        expected = {d for d in dist if d != src}
        for d in sorted(expected - set(table)):
            errors.append(f"{src}: no route to reachable {d} ({dist[d]} hops)")
        for d in sorted(set(table) - expected):
            errors.append(f"{src}: route to unreachable {d}")
        for d in sorted(expected & set(table)):
            hop, hops = _unpack(table[d])
            if hops != dist[d]:
                errors.append(f"{src}->{d}: {hops} hops, shortest is {dist[d]}")
            elif not g.has_edge(src, hop):
                errors.append(f"{src}->{d}: next hop {hop} is not a neighbour")
            elif nx.shortest_path_length(g, hop, d) != dist[d] - 1:
                errors.append(f"{src}->{d}: next hop {hop} is not on a shortest path")
    return errors
