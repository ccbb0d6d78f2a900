import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlab.oracle import table_errors
from peerlab.routing import Route, next_hops, shortest_path_tree


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
    adj = adjacency(g)
    nodes = sorted(adj)
    src = data.draw(st.sampled_from(nodes))
    tree = shortest_path_tree(adj, src)
    u = data.draw(st.sampled_from(nodes))
    v = data.draw(st.sampled_from(nodes))
    if u == v:
        return
    added = v not in adj[u]
    if added:
        adj[u].add(v)
        adj[v].add(u)
    else:
        adj[u].discard(v)
        adj[v].discard(u)
    if not tree.may_change(u, v, added):
        assert shortest_path_tree(adj, src).routes() == tree.routes()
