"""matplotlib figures of networks, routes and runs.

Every function takes ``ax=None`` (a new figure is made when none is given), draws, and returns a
small dict of what it drew (counts, highlighted edges, the axes) so callers and tests can check
the picture's content. Nothing here calls ``plt.show()``; matplotlib is imported inside the
functions, as networkx's drawing functions do.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from peerlab.results import RunResult

UP, DOWN, BELIEVED, UNHEARD = "#2b7bba", "#c8c8c8", "#d7301f", "#fdae61"
HIGHLIGHT = "#e6550d"


def _axes(ax, figsize=(6, 5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def layout(result: RunResult, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Positions of every member the run ever had: from the topology file when it gives them
    (e.g. a Topology Zoo GML's longitude and latitude), otherwise a stable seeded layout."""
    import networkx as nx

    everyone = {*result.members, *(m for link in result.initial_links for m in link)}
    if result.positions and everyone <= set(result.positions):
        return {m: tuple(result.positions[m]) for m in sorted(everyone)}
    g = nx.Graph()
    g.add_nodes_from(sorted({*result.members, *(m for link in result.initial_links for m in link)}))
    g.add_edges_from(tuple(x) for x in (*result.initial_links, *result.final_links))
    return nx.spring_layout(g, seed=seed) if len(g) > 1 else {n: (0.0, 0.0) for n in g}


def route_path(result: RunResult, src: str, dst: str) -> list[str]:
    """The path the final routing tables would take from ``src`` to ``dst`` (empty if none)."""
    path = [src]
    while path[-1] != dst:
        hop = result.routing_tables.get(path[-1], {}).get(dst)
        if hop is None or hop["next_hop"] in path:
            return []
        path.append(hop["next_hop"])
    return path


def draw_topology(
    result: RunResult,
    *,
    ax=None,
    path: Sequence[str] | None = None,
    pos: dict | None = None,
    seed: int = 0,
    title: str | None = None,
) -> dict:
    """The network at the end of a run: links up (solid), scenario links down (dashed grey),
    optionally one path highlighted (a route or a message's path)."""
    import networkx as nx

    ax = _axes(ax)
    pos = pos or layout(result, seed)
    up = {_pair(*x) for x in result.final_links}
    down = {_pair(*x) for x in result.initial_links} - up
    nodes = sorted(pos)
    alive = set(result.members)
    g = nx.Graph()
    g.add_nodes_from(nodes)
    highlighted = [_pair(a, b) for a, b in zip(path or [], (path or [])[1:], strict=False)]
    nx.draw_networkx_edges(g, pos, edgelist=sorted(up), edge_color=UP, width=1.5, ax=ax)
    if down:
        nx.draw_networkx_edges(
            g, pos, edgelist=sorted(down), edge_color=DOWN, style="dashed", width=1.0, ax=ax
        )
    if highlighted:
        nx.draw_networkx_edges(g, pos, edgelist=highlighted, edge_color=HIGHLIGHT, width=4.0, ax=ax)
    colours = ["#ffffff" if n in alive else "#eeeeee" for n in nodes]
    nx.draw_networkx_nodes(
        g,
        pos,
        nodelist=nodes,
        node_color=colours,
        edgecolors="#333333",
        node_size=300 if len(nodes) <= 50 else 40,
        ax=ax,
    )
    if len(nodes) <= 60:
        nx.draw_networkx_labels(g, pos, font_size=8, ax=ax)
    title = title or f"{result.scenario} ({result.backend}): {len(up)} links up" + (
        f", {len(down)} down" if down else ""
    )
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.set_axis_off()
    return {
        "ax": ax,
        "pos": pos,
        "nodes": len(nodes),
        "edges_up": len(up),
        "edges_down": len(down),
        "highlighted": highlighted,
    }


def draw_route(result: RunResult, src: str, dst: str, *, ax=None, **kw) -> dict:
    """The topology with the final tables' route from ``src`` to ``dst`` highlighted."""
    path = route_path(result, result.member(src), result.member(dst))
    label = " -> ".join(path) if path else "no route"
    drawn = draw_topology(result, ax=ax, path=path, title=f"route {src} to {dst}: {label}", **kw)
    drawn["path"] = path
    return drawn


def draw_message(result: RunResult, msg_id: str, *, ax=None, **kw) -> dict:
    """The topology with one message's recorded path highlighted."""
    msg = next((m for m in result.messages if m["id"] == msg_id), None)
    if msg is None:
        raise ValueError(f"no message {msg_id!r} in the results of {result.scenario!r}")
    fate = "delivered" if msg["delivered_at"] is not None else f"dropped ({msg['drop_reason']})"
    return draw_topology(
        result,
        ax=ax,
        path=msg["path"],
        title=f"message {msg_id}: {' -> '.join(msg['path'])} {fate}",
        **kw,
    )


def draw_view(result: RunResult, member: str, *, ax=None, pos=None, seed: int = 0) -> dict:
    """One member's view against the truth: links it knows (blue), links it still believes in
    that are gone (red), links it has not heard of (orange, dashed)."""
    import networkx as nx

    result.member(member)
    ax = _axes(ax)
    pos = pos or layout(result, seed)
    truth = {_pair(*x) for x in result.final_links}
    believed = {_pair(*x) for x in result.views.get(member, [])}
    g = nx.Graph()
    g.add_nodes_from(sorted(pos))
    known, stale, unheard = truth & believed, believed - truth, truth - believed
    for edges, colour, style in (
        (known, UP, "solid"),
        (stale, BELIEVED, "solid"),
        (unheard, UNHEARD, "dashed"),
    ):
        if edges:
            nx.draw_networkx_edges(
                g, pos, edgelist=sorted(edges), edge_color=colour, style=style, width=2.0, ax=ax
            )
    nx.draw_networkx_nodes(
        g,
        pos,
        node_color=["#fdd0a2" if n == member else "#ffffff" for n in g],
        edgecolors="#333333",
        node_size=300 if len(g) <= 50 else 40,
        ax=ax,
    )
    if len(g) <= 60:
        nx.draw_networkx_labels(g, pos, font_size=8, ax=ax)
    ax.set_title(f"{member}'s view: {len(known)} known, {len(stale)} stale, {len(unheard)} unheard")
    ax.set_axis_off()
    return {"ax": ax, "known": sorted(known), "stale": sorted(stale), "unheard": sorted(unheard)}


def draw_routing_table(result: RunResult, member: str, *, ax=None) -> dict:
    """A member's routing table as a table: destination, next hop, hops."""
    table = result.table(member)
    ax = _axes(ax, (4, 0.4 + 0.3 * max(1, len(table))))
    rows = [[d, r["next_hop"], str(r["hops"])] for d, r in sorted(table.items())]
    ax.set_axis_off()
    if rows:
        ax.table(cellText=rows, colLabels=["destination", "next hop", "hops"], loc="center")
    ax.set_title(f"routing table of {member}")
    return {"ax": ax, "rows": len(rows)}


def draw_adjacency(result: RunResult, *, ax=None) -> dict:
    """The final network as an adjacency-matrix heatmap (members in sorted order)."""
    ax = _axes(ax)
    members = sorted(result.members)
    index = {m: i for i, m in enumerate(members)}
    matrix = [[0] * len(members) for _ in members]
    for a, b in result.final_links:
        if a in index and b in index:
            matrix[index[a]][index[b]] = matrix[index[b]][index[a]] = 1
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if len(members) <= 40:
        ax.set_xticks(range(len(members)), members, rotation=90, fontsize=7)
        ax.set_yticks(range(len(members)), members, fontsize=7)
    ax.set_title("adjacency")
    return {"ax": ax, "image": image, "size": len(members), "ones": sum(map(sum, matrix))}


def draw_timeline(result: RunResult, *, ax=None) -> dict:
    """The run over time: topology events, convergence intervals, deliveries and drops."""
    ax = _axes(ax, (9, 3.5))
    topo = [e for e in result.events if e["kind"] not in ("send", "traffic")]
    for e in topo:
        ax.axvline(e["at"], color="#999999", linewidth=0.8, linestyle=":")
        ax.text(
            e["at"],
            1.02,
            e["label"],
            rotation=45,
            fontsize=7,
            transform=ax.get_xaxis_transform(),
            ha="left",
            va="bottom",
        )
    intervals = 0
    for c in result.convergence:
        if c["converged_at"] is not None:
            ax.broken_barh(
                [(c["at"], max(c["converged_at"] - c["at"], 1e-3))], (-1.4, 0.8), color="#9ecae1"
            )
            intervals += 1
    delivered = [m for m in result.messages if m["delivered_at"] is not None]
    dropped = [m for m in result.messages if m["delivered_at"] is None]
    if delivered:
        ax.scatter(
            [m["sent_at"] for m in delivered],
            [(m["delivered_at"] - m["sent_at"]) * 1000 for m in delivered],
            s=10,
            color=UP,
            label=f"delivered ({len(delivered)})",
        )
    if dropped:
        ax.scatter(
            [m["sent_at"] for m in dropped],
            [0] * len(dropped),
            marker="x",
            s=30,
            color=BELIEVED,
            label=f"dropped ({len(dropped)})",
        )
    ax.set_xlabel("scenario time (s)")
    ax.set_ylabel("latency (ms); bars: converging")
    ax.set_xlim(0, max(result.duration, 1e-3))
    if delivered or dropped:
        ax.legend(loc="upper right", fontsize=7)
    return {
        "ax": ax,
        "events": len(topo),
        "intervals": intervals,
        "delivered": len(delivered),
        "dropped": len(dropped),
    }


def _latencies(result: RunResult) -> list[float]:
    return sorted(
        (m["delivered_at"] - m["sent_at"]) * 1000
        for m in result.messages
        if m["delivered_at"] is not None
    )


def draw_latency_cdf(results: RunResult | Sequence[RunResult], *, ax=None) -> dict:
    """Latency CDF of one or more runs (overlaid, labelled by backend)."""
    ax = _axes(ax)
    runs = [results] if isinstance(results, RunResult) else list(results)
    lines = 0
    for r in runs:
        lat = _latencies(r)
        if lat:
            ax.step(
                lat,
                [(i + 1) / len(lat) for i in range(len(lat))],
                where="post",
                label=f"{r.backend} ({len(lat)})",
            )
            lines += 1
    ax.set_xlabel("one-way latency (ms)")
    ax.set_ylabel("fraction of messages")
    ax.set_ylim(0, 1.02)
    if lines:
        ax.legend()
    ax.set_title("latency CDF")
    return {"ax": ax, "lines": lines}


def draw_hops(result: RunResult, *, ax=None) -> dict:
    """Histogram of hop counts of delivered messages."""
    ax = _axes(ax)
    hops = [len(m["path"]) - 1 for m in result.messages if m["delivered_at"] is not None]
    if hops:
        ax.hist(hops, bins=range(0, max(hops) + 2), align="left", rwidth=0.8, color=UP)
    ax.set_xlabel("hops")
    ax.set_ylabel("messages")
    ax.set_title("hop counts")
    return {"ax": ax, "messages": len(hops)}


def draw_comparison(sim: RunResult, real: RunResult, *, fig=None) -> dict:
    """Real against simulated: latency CDFs, hops per message, convergence times."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    draw_latency_cdf([sim, real], ax=axes[0])
    hs = {m["id"]: len(m["path"]) - 1 for m in sim.delivered}
    hr = {m["id"]: len(m["path"]) - 1 for m in real.delivered}
    common = sorted(set(hs) & set(hr))
    axes[1].scatter([hs[k] for k in common], [hr[k] for k in common], alpha=0.4)
    top = max([*hs.values(), *hr.values(), 1])
    axes[1].plot([0, top], [0, top], color="#999999", linewidth=0.8)
    axes[1].set_xlabel("hops (sim)")
    axes[1].set_ylabel("hops (real)")
    axes[1].set_title(f"hops per message ({len(common)} in both)")
    labels = [c["event"] for c in sim.convergence]
    took = [
        [
            None if c["converged_at"] is None else (c["converged_at"] - c["at"]) * 1000
            for c in run.convergence
        ]
        for run in (sim, real)
    ]
    xs = range(len(labels))
    for shift, values, name in ((-0.2, took[0], "sim"), (0.2, took[1], "real")):
        axes[2].bar(
            [x + shift for x in xs][: len(values)], [v or 0 for v in values], width=0.4, label=name
        )
    axes[2].set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=7)
    axes[2].set_ylabel("ms to converge")
    axes[2].legend()
    axes[2].set_title("convergence")
    fig.tight_layout()
    return {"fig": fig, "axes": list(axes), "common_messages": len(common)}


def link_states(result: RunResult) -> list[tuple[float, tuple[str, str], bool]]:
    """Changes of established links over time, from the run's trace: (time, pair, up)."""
    connected: set[tuple[str, str]] = set()
    changes = []
    for e in result.trace:
        if e.kind not in ("connect", "disconnect") or not e.fields.get("peer"):
            continue
        a, b = e.member, e.fields["peer"]
        before = (a, b) in connected and (b, a) in connected
        (connected.add if e.kind == "connect" else connected.discard)((a, b))
        after = (a, b) in connected and (b, a) in connected
        if before != after:
            changes.append((e.time, _pair(a, b), after))
    return changes


def animate(result: RunResult, path: str, *, frames: int = 40, fps: int = 8, seed: int = 0) -> dict:
    """An animation of a run (links failing and healing, messages hopping), saved as a GIF
    (Pillow) or, for a ``.mp4`` path, with ffmpeg."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    pos = layout(result, seed)
    changes = link_states(result)
    fig, ax = plt.subplots(figsize=(6, 5))
    end = max(result.duration, 1e-3)

    def links_at(t: float) -> set[tuple[str, str]]:
        if not changes:
            return {_pair(*x) for x in result.final_links}
        up: set[tuple[str, str]] = set()
        for when, pair, is_up in changes:
            if when > t:
                break
            (up.add if is_up else up.discard)(pair)
        return up

    def frame(i: int) -> None:
        import networkx as nx

        t = end * i / max(frames - 1, 1)
        ax.clear()
        up = links_at(t)
        g = nx.Graph()
        g.add_nodes_from(sorted(pos))
        nx.draw_networkx_edges(g, pos, edgelist=sorted(up), edge_color=UP, ax=ax)
        nx.draw_networkx_nodes(
            g,
            pos,
            node_color="#ffffff",
            edgecolors="#333333",
            node_size=200 if len(pos) <= 50 else 30,
            ax=ax,
        )
        if len(pos) <= 40:
            nx.draw_networkx_labels(g, pos, font_size=7, ax=ax)
        dots = []
        for m in result.messages:
            if m["delivered_at"] is None or not m["sent_at"] <= t <= m["delivered_at"]:
                continue
            span = max(m["delivered_at"] - m["sent_at"], 1e-9)
            where = (t - m["sent_at"]) / span * (len(m["path"]) - 1)
            k = min(int(where), len(m["path"]) - 2)
            if k < 0:
                continue
            (x0, y0), (x1, y1) = pos[m["path"][k]], pos[m["path"][k + 1]]
            f = where - k
            dots.append((x0 + (x1 - x0) * f, y0 + (y1 - y0) * f))
        if dots:
            ax.scatter(*zip(*dots, strict=True), color=HIGHLIGHT, s=25, zorder=3)
        ax.set_title(f"{result.scenario} ({result.backend})  t = {t:5.2f}s")
        ax.set_axis_off()

    anim = animation.FuncAnimation(fig, frame, frames=frames)
    writer = (
        animation.FFMpegWriter(fps=fps)
        if path.endswith(".mp4")
        else animation.PillowWriter(fps=fps)
    )
    anim.save(path, writer=writer)
    plt.close(fig)
    return {"path": path, "frames": frames, "link_changes": len(changes)}


def overview(result: RunResult, path: str) -> str:
    """One PNG with the topology and the timeline of a run; returns the path."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 4.5))
    grid = fig.add_gridspec(1, 3)
    draw_topology(result, ax=fig.add_subplot(grid[0, 0]))
    draw_timeline(result, ax=fig.add_subplot(grid[0, 1:]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


KINDS: dict[str, Any] = {
    "topology": draw_topology,
    "route": draw_route,
    "view": draw_view,
    "timeline": draw_timeline,
    "latency": draw_latency_cdf,
    "hops": draw_hops,
    "adjacency": draw_adjacency,
    "table": draw_routing_table,
}
