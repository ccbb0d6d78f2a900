"""Core benchmarks: our BFS next hops vs networkx, and our msgpack codec vs stdlib json.

Each ratio is against a baseline measured in the same run. Run: python benchmarks/bench_core.py
"""

from __future__ import annotations

import json
import time

import networkx as nx
from harness import machine_line

from peerlab.routing import next_hops, numbered, shortest_path_tree
from peerlab.wire import Advert, Adverts, Data, FrameDecoder, encode_advert, encode_frame


def best(fn, repeat: int = 5) -> float:
    """Best wall time of ``repeat`` runs (seconds)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def networkx_next_hops(g: nx.Graph, source) -> dict:
    """The networkx way: shortest paths from the source, next hop = second node of each path."""
    paths = nx.single_source_shortest_path(g, source)
    return {d: (p[1], len(p) - 1) for d, p in paths.items() if d != source}


def bench_routing() -> None:
    print("next hops vs networkx.single_source_shortest_path + extraction (random 4-regular)")
    print("  tree: what a member computes on each recompute (BFS over its adverts, two-way check)")
    print("  table: the tree plus the {id: Route} dict; from-map: next_hops on {id: set of ids}")
    for n in (1_000, 10_000):
        g = nx.random_regular_graph(4, n, seed=1)
        as_map = {str(u): {str(v) for v in g[u]} for u in g}
        adj, names = numbered(as_map)
        listed = [frozenset(row) for row in adj]  # what a database holds: every advert's claims
        src = names.index("0")
        gs = nx.relabel_nodes(g, str)

        def search(adj=adj, src=src, names=names, listed=listed):
            return shortest_path_tree(adj, src, names, listed)

        tree = best(search, 9)
        table = best(lambda search=search, names=names: search().routes(names), 9)
        from_map = best(lambda m=as_map: next_hops(m, "0"), 9)
        theirs = best(lambda gs=gs: networkx_next_hops(gs, "0"), 9)
        print(
            f"  n={n:>6}: networkx {theirs * 1e3:6.2f} ms | tree {tree * 1e3:6.2f} ms "
            f"{theirs / tree:4.1f}x | table {table * 1e3:6.2f} ms {theirs / table:4.1f}x | "
            f"from-map {from_map * 1e3:6.2f} ms {theirs / from_map:4.1f}x"
        )


def bench_codec(count: int = 20_000) -> None:
    data = Data("a:123", "a", "z", 60, ["a", "b", "c"], b"x" * 100)
    adverts = [
        Advert(f"m{i}", i + 1, tuple(f"m{j}" for j in range(i, i + 4)), f"10.0.0.{i}:9000")
        for i in range(20)
    ]
    batch = Adverts([encode_advert(a) for a in adverts])
    as_json_data = {
        "t": "data",
        "msg_id": "a:123",
        "src": "a",
        "dst": "z",
        "ttl": 60,
        "path": ["a", "b", "c"],
        "payload": "x" * 100,
    }
    as_json_batch = {
        "t": "adverts",
        "adverts": [
            {
                "origin": a.origin,
                "seq": a.seq,
                "neighbours": list(a.neighbours),
                "address": a.address,
            }
            for a in adverts
        ],
    }

    def ours(message) -> None:
        dec = FrameDecoder()
        for _ in range(count):
            dec.feed(encode_frame(message))

    def stdlib(obj) -> None:
        for _ in range(count):
            frame = json.dumps(obj).encode()
            json.loads(frame)

    print(f"encode+decode x{count}: peerlab.wire (msgspec msgpack, framed) vs json")
    for label, msg, obj in (
        ("Data(100 B payload)", data, as_json_data),
        ("Adverts(20 adverts)", batch, as_json_batch),
    ):
        t_ours = best(lambda msg=msg: ours(msg), 3)
        t_json = best(lambda obj=obj: stdlib(obj), 3)
        print(
            f"  {label:<22} ours {t_ours / count * 1e6:6.2f} us  json "
            f"{t_json / count * 1e6:6.2f} us  speed-up {t_json / t_ours:4.1f}x"
        )


def main() -> None:
    print(machine_line())
    bench_routing()
    bench_codec()


if __name__ == "__main__":
    main()
