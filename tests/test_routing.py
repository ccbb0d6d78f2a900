import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlab.oracle import Oracle, table_errors
from peerlab.routing import Route, next_hops, numbered, shortest_path_tree


def adjacency(g: nx.Graph) -> dict[str, set[str]]:
    return {str(u): {str(v) for v in g[u]} for u in g}


graphs = st.builds(
    lambda n, p, seed: nx.gnp_random_graph(n, p, seed=seed),
    st.integers(1, 40),
    st.floats(0.0, 0.3),
    st.integers(0, 10_000),
)


@settings(max_examples=150)
@given(graphs, st.data())
def test_next_hops_match_networkx_shortest_paths(g, data):
    adj = adjacency(g)
    src = data.draw(st.sampled_from(sorted(adj)))
    table = next_hops(adj, src)
    links = [(str(u), str(v)) for u, v in g.edges]
    assert table_errors({src: table}, links, members=adj) == []


def test_ties_break_by_sorted_id():
    # a square: s reaches t via a or b, both two hops; the smaller id wins
    adj = {"s": {"b", "a"}, "a": {"s", "t"}, "b": {"s", "t"}, "t": {"a", "b"}}
    assert next_hops(adj, "s")["t"] == Route("a", 2)


def test_unknown_source_and_isolated_member_have_empty_tables():
    assert next_hops({}, "x") == {}
    assert next_hops({"x": set()}, "x") == {}


@settings(max_examples=100)
@given(graphs, st.data())
def test_may_change_never_misses_a_change(g, data):
    """If may_change says an edge change cannot alter the tree, recomputing agrees."""
    adj, names = numbered(adjacency(g))
    src = data.draw(st.integers(0, len(names) - 1))
    tree = shortest_path_tree(adj, src, names)
    u = data.draw(st.integers(0, len(names) - 1))
    v = data.draw(st.integers(0, len(names) - 1))
    if u == v:
        return
    added = v not in adj[u]
    if added:
        adj[u].append(v)
        adj[v].append(u)
    else:
        adj[u].remove(v)
        adj[v].remove(u)
    if not tree.may_change(u, v, added):
        assert shortest_path_tree(adj, src, names).routes(names) == tree.routes(names)


def sorted_bfs_table(adj: dict[str, set[str]], src: str) -> dict[str, Route]:
    """The textbook definition: a queue, every neighbour list visited in sorted order."""
    first: dict[str, str] = {}
    dist = {src: 0}
    queue = [src]
    for u in queue:
        for v in sorted(adj.get(u, ())):
            if v not in dist:
                dist[v] = dist[u] + 1
                first[v] = v if u == src else first[u]
                queue.append(v)
    return {d: Route(first[d], dist[d]) for d in first}


@settings(max_examples=150)
@given(graphs, st.data())
def test_tables_equal_a_bfs_with_sorted_neighbour_lists(g, data):
    """Only the source's neighbours are sorted, yet every tie breaks as in the textbook BFS."""
    adj = adjacency(g)
    src = data.draw(st.sampled_from(sorted(adj)))
    assert next_hops(adj, src) == sorted_bfs_table(adj, src)


def test_tree_counts_what_changed():
    adj, names = numbered({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}})
    before = shortest_path_tree(adj, 0, names)
    adj[1].remove(2)
    adj[2].remove(1)
    after = shortest_path_tree(adj, 0, names)
    assert (before.reachable, after.reachable) == (2, 1)
    assert after.differences(before) == (1, 1)
    assert not after.reaches(2) and not after.reaches(99) and after.first_hop[2] == -1


@settings(max_examples=100)
@given(graphs, graphs, st.data())
def test_a_tree_delta_turns_the_old_table_into_the_new(g1, g2, data):
    names = [str(v) for v in range(max(len(g1), len(g2)))]
    source = data.draw(st.sampled_from(range(min(len(g1), len(g2)))))
    old, new = (
        shortest_path_tree(
            [sorted(g[u]) if u in g else [] for u in range(len(names))], source, names
        )
        for g in (g1, g2)
    )
    table = dict(old.routes(names))
    delta = new.delta(old, names)
    for i in range(0, len(delta), 3):
        dst, hop, hops = delta[i : i + 3]
        if hop is None:
            del table[dst]
        else:
            table[dst] = Route(hop, hops)
    assert table == new.routes(names)
    assert len(delta) // 3 == sum(
        1 for d in set(table) | set(old.routes(names)) if table.get(d) != old.routes(names).get(d)
    )


def wrongs(table: dict[str, Route], names: list[str], draw) -> dict[str, Route]:
    """The table with one entry spoilt (removed, extra, wrong hops or a wrong next hop)."""
    spoilt = dict(table)
    how = draw(st.sampled_from(["remove", "extra", "hops", "hop"]))
    if how == "extra" or not spoilt:
        spoilt[draw(st.sampled_from(names))] = Route(draw(st.sampled_from(names)), 1)
        return spoilt
    d = draw(st.sampled_from(sorted(spoilt)))
    if how == "remove":
        del spoilt[d]
    elif how == "hops":
        spoilt[d] = Route(spoilt[d].next_hop, spoilt[d].hops + draw(st.sampled_from([-1, 1])))
    else:
        spoilt[d] = Route(draw(st.sampled_from(names)), spoilt[d].hops)
    return spoilt


@settings(max_examples=150)
@given(graphs, st.data())
def test_oracle_quick_verdict_matches_its_detailed_errors(g, data):
    """agrees() takes a quick path; it must say exactly what errors() says, right or wrong."""
    adj = adjacency(g)
    names = sorted(adj)
    src = data.draw(st.sampled_from(names))
    table = next_hops(adj, src)
    if data.draw(st.booleans()):
        table = wrongs(table, names, data.draw)
    oracle = Oracle(names, [(str(u), str(v)) for u, v in g.edges])
    as_dicts = {d: {"next_hop": r.next_hop, "hops": r.hops} for d, r in table.items()}
    for tables in ({src: table}, {src: as_dicts}):
        assert oracle.agrees(tables) == (oracle.errors(tables) == [])


def test_oracle_rejects_a_next_hop_one_step_closer_that_is_not_a_neighbour():
    oracle = Oracle("abdw", [("a", "b"), ("b", "d"), ("d", "w")])
    table = {"b": Route("b", 1), "d": Route("w", 2), "w": Route("b", 3)}
    assert not oracle.agrees({"a": table})
    assert oracle.errors({"a": table}) == ["a->d: next hop w is not a neighbour"]


def test_an_edge_counts_only_when_both_ends_list_each_other():
    # 0 lists 1, 2 and 3; 1 lists 0 and 4; 2 lists nobody; 3 is unknown; 4 lists 1
    claims = [[1, 2, 3], [0, 4], [], [], [1]]
    listed = [set(c) for c in claims]
    tree = shortest_path_tree(claims, 0, ["a", "b", "c", "d", "e"], listed)
    assert tree.dist == [0, 1, -1, -1, 2] and tree.first_hop == [-1, 1, -1, -1, 1]
    assert tree.reachable == 2
    # without the claims every edge counts
    assert shortest_path_tree(claims, 0, ["a", "b", "c", "d", "e"]).reachable == 4


directed_maps = st.dictionaries(
    st.sampled_from([f"n{i}" for i in range(12)]),
    st.sets(st.sampled_from([f"n{i}" for i in range(14)]), max_size=4),
    min_size=1,
)


@settings(max_examples=200)
@given(directed_maps, st.data())
def test_the_search_on_ids_and_on_numbers_agree(adj, data):
    """next_hops searches the map's ids directly; a member searches numbered lists. Same tables,
    even on one-way maps and with neighbours that are not keys."""
    src = data.draw(st.sampled_from(sorted(adj)))
    lists, names = numbered(adj)
    assert next_hops(adj, src) == shortest_path_tree(lists, names.index(src), names).routes(names)
