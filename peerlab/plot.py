"""matplotlib figures of networks, routes and runs.

Every function takes ``ax=None`` (a new figure is made when none is given), draws, and returns a
small dict of what it drew (counts, highlighted edges, the axes) so callers and tests can check
the picture's content. Network pictures take ``at=`` (scenario seconds) to show that instant,
read from the results' timeline; without it they show the end of the run. Colours that mean
something are named in a legend, and every figure names its scenario. Nothing here calls
``plt.show()``; matplotlib is imported inside the functions, as networkx's drawing functions do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

from peerlab.errors import UnknownMember
from peerlab.results import RunResult, convergence_time

UP, DOWN, BELIEVED, UNHEARD = "#2b7bba", "#bdbdbd", "#d7301f", "#fdae61"
HIGHLIGHT = "#e6550d"
SIM, REAL = "#1f77b4", "#ff7f0e"  # matplotlib's first two colours, as the other panels use
SOURCE, DESTINATION = "#31a354", "#756bb1"
FADED = "#9ecae1"
#: Above this many members a network picture fades the crowd and labels only what matters.
MANY = 50
#: Rows of a routing table drawn side by side in columns, and columns on one page.
TABLE_ROWS, TABLE_COLUMNS = 40, 3

Pair = tuple[str, str]


def _axes(ax, figsize=(6, 5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _name(result: RunResult, what: str, at: float | None = None) -> str:
    """A title: the scenario and backend, what is drawn, and the instant if not the end."""
    when = "" if at is None else f" at {at:g}s"
    return f"{result.scenario} ({result.backend}): {what}{when}"


def _everyone(result: RunResult) -> list[str]:
    """Every member the run ever had."""
    names = {*result.members, *(m for link in result.initial_links for m in link)}
    if result.timeline is not None:
        names.update(result.timeline["names"])
    return sorted(names)


def _all_links(result: RunResult) -> set[Pair]:
    """Every link the run ever had: the scenario's, those at the end, and any in between."""
    links = {_pair(*x) for x in (*result.initial_links, *result.final_links)}
    if result.timeline is not None:
        links.update(_pair(a, b) for _, a, b, _, _ in result.timeline["links"])
    return links


def layout(result: RunResult, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Positions of every member the run ever had: from the topology file when it gives them
    (a Topology Zoo GML's longitude and latitude), a grid for a grid, a circle for a ring, a
    line for a line, otherwise a stable seeded spring layout. Members that joined later sit
    beside the members they joined."""
    import networkx as nx

    everyone = _everyone(result)
    if result.positions and set(everyone) <= set(result.positions):
        return {m: (float(result.positions[m][0]), float(result.positions[m][1])) for m in everyone}
    start = nx.Graph()
    start.add_nodes_from(sorted({m for link in result.initial_links for m in link}))
    start.add_edges_from(tuple(x) for x in result.initial_links)
    pos = _shaped(start)
    g = nx.Graph()
    g.add_nodes_from(everyone)
    g.add_edges_from(_all_links(result))
    if pos is None:
        return nx.spring_layout(g, seed=seed) if len(g) > 1 else {n: (0.0, 0.0) for n in g}
    cx, cy = (sum(c) / len(pos) for c in zip(*pos.values(), strict=True))
    for k, m in enumerate(m for m in everyone if m not in pos):
        # a newcomer: between the members it links to, drawn a quarter of the way to the centre
        near = [pos[n] for n in sorted(g[m]) if n in pos] or [(cx, cy)]
        x, y = (sum(c) / len(near) for c in zip(*near, strict=True))
        pos[m] = (x + (cx - x) / 4 + 0.05 * k, y + (cy - y) / 4)
    return pos


def _shaped(g) -> dict[str, tuple[float, float]] | None:
    """Positions that show a grid, a ring or a line as one, if ``g`` is one (members in sorted
    order, as the generators name them); None for any other graph."""
    n = len(g)
    nodes = sorted(g)
    if n < 3 or g.number_of_edges() == 0:
        return None
    edges = {_pair(*e) for e in g.edges}
    for rows in range(2, n // 2 + 1):  # row-major, as the grid_2d generator numbers it
        cols = n // rows
        if rows * cols != n or cols < 2:
            continue
        grid = {
            _pair(nodes[r * cols + c], nodes[r * cols + c + dc])
            for r in range(rows)
            for c in range(cols)
            for dc in (1, cols)
            if (dc == 1 and c + 1 < cols) or (dc == cols and r + 1 < rows)
        }
        if grid == edges:
            return {m: (float(i % cols), -float(i // cols)) for i, m in enumerate(nodes)}
    degrees = [d for _, d in g.degree()]
    if max(degrees) != 2 or g.number_of_edges() not in (n - 1, n):
        return None
    import networkx as nx

    if not nx.is_connected(g):
        return None
    ends = sorted(m for m in nodes if g.degree(m) == 1)
    walk = [ends[0] if ends else nodes[0]]
    while len(walk) < n:
        walk.append(min(v for v in g[walk[-1]] if v not in walk[-2:]))
    if ends:  # a line
        return {m: (float(i), 0.0) for i, m in enumerate(walk)}
    return {  # a ring, clockwise from the top
        m: (math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n))
        for i, m in enumerate(walk)
    }


def route_path(result: RunResult, src: str, dst: str, at: float | None = None) -> list[str]:
    """The path the routing tables (at the end, or at ``at``) would take from ``src`` to
    ``dst`` (empty if none)."""
    path = [src]
    while path[-1] != dst:
        here = path[-1]
        if at is None:
            table = result.routing_tables.get(here, {})
        else:
            try:
                table = result.table_at(here, at)
            except UnknownMember:
                return []
        hop = table.get(dst)
        if hop is None or hop["next_hop"] in path:
            return []
        path.append(hop["next_hop"])
    return path


def _state(result: RunResult, at: float | None) -> tuple[set[str], set[Pair]]:
    """The members running and the links up at ``at`` (the end when None)."""
    if at is None:
        return set(result.members), {_pair(*x) for x in result.final_links}
    return set(result.members_at(at)), set(result.links_at(at))


def _legend(ax, entries: Sequence[tuple[str, dict[str, Any]]], columns: int = 3) -> None:
    """A legend below the axes from ``(label, Line2D keyword arguments)`` pairs."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], label=label, **style) for label, style in entries]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(columns, len(handles)),
            fontsize=8,
            frameon=False,
        )


def _edges(ax, pos, pairs: Iterable[Pair], **style) -> int:
    from matplotlib.collections import LineCollection

    segments = [(pos[a], pos[b]) for a, b in sorted(pairs) if a in pos and b in pos]
    if segments:
        ax.add_collection(LineCollection(segments, **style))
    return len(segments)


def _draw_network(
    result: RunResult,
    ax,
    *,
    at: float | None,
    pos: dict | None,
    seed: int,
    path: Sequence[str] = (),
    view_of: str | None = None,
    title: str,
) -> dict:
    """The network at one instant: links up and down (or one member's view against them),
    members running and not, a path with its endpoints; labels placed clear of each other."""
    pos = pos or layout(result, seed)
    nodes = sorted(pos)
    running, up = _state(result, at)
    down = _all_links(result) - up
    many = len(nodes) > MANY
    entries: list[tuple[str, dict[str, Any]]] = []
    drawn: dict[str, Any] = {"ax": ax, "pos": pos, "nodes": len(nodes)}
    highlighted = [_pair(a, b) for a, b in pairwise(path)]
    if view_of is not None:
        believed = result.view_at(view_of, at) if at is not None else None
        if believed is None:
            believed = {_pair(*x) for x in result.views.get(view_of, [])}
        known, stale, unheard = up & believed, believed - up, up - believed
        for label, edges, colour, style in (
            ("link it knows", known, UP, "solid"),
            ("believed, but down", stale, BELIEVED, "solid"),
            ("up, not heard of", unheard, UNHEARD, "dashed"),
        ):
            _edges(ax, pos, edges, colors=colour, linestyles=style, linewidths=2.0, zorder=1)
            entries.append((f"{label} ({len(edges)})", {"color": colour, "linestyle": style}))
        drawn.update(known=sorted(known), stale=sorted(stale), unheard=sorted(unheard))
    else:
        width = 0.6 if many else 1.8
        _edges(ax, pos, up, colors=FADED if many else UP, linewidths=width, zorder=1)
        entries.append((f"link up ({len(up)})", {"color": FADED if many else UP}))
        if down:
            colour = BELIEVED if many else DOWN  # in a crowd, what broke is what matters
            _edges(ax, pos, down, colors=colour, linestyles="dashed", linewidths=1.2, zorder=1)
            entries.append((f"link down ({len(down)})", {"color": colour, "linestyle": "dashed"}))
        drawn.update(edges_up=len(up), edges_down=len(down))
    if highlighted:
        _edges(ax, pos, highlighted, colors=HIGHLIGHT, linewidths=4.0, zorder=2)
        entries.append(("path", {"color": HIGHLIGHT, "linewidth": 4}))
    drawn["highlighted"] = highlighted
    special = {}
    if path:
        special[path[0]] = (SOURCE, f"source {path[0]}")
        if len(path) > 1:
            special[path[-1]] = (DESTINATION, f"destination {path[-1]}")
    if view_of is not None:
        special[view_of] = (HIGHLIGHT, f"{view_of}, whose view")
    short = all(len(n) <= 3 for n in nodes) and not many
    size = 320 if short else (14 if many else 40)
    xs, ys = zip(*(pos[n] for n in nodes), strict=True) if nodes else ((), ())
    ax.scatter(
        xs,
        ys,
        s=size,
        c=["#ffffff" if n in running else "#e0e0e0" for n in nodes],
        edgecolors=["#333333" if n in running else "#9e9e9e" for n in nodes],
        linewidths=0.8,
        zorder=3,
    )
    if set(nodes) - running:
        entries.append(
            ("member not running", {"marker": "o", "color": "#9e9e9e", "linestyle": "none"})
        )
    for member, (colour, label) in special.items():
        if member in pos:
            ax.scatter(*pos[member], s=size * 1.6 + 30, c=colour, edgecolors="#333333", zorder=4)
            entries.append((label, {"marker": "o", "color": colour, "linestyle": "none"}))
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)
    ax.autoscale_view()
    ax.apply_aspect()  # now, not when drawn: labels are placed in the final coordinates
    ax.set_axis_off()
    if not many:
        labelled = nodes
    else:  # in a crowd: the path, the chosen member and the ends of broken links
        labelled = sorted({*path, *special, *(m for pair in down for m in pair)} & set(pos))
    if short:
        for n in labelled:
            ax.text(*pos[n], n, ha="center", va="center", fontsize=8, zorder=5)
        drawn["labels"] = []
    else:
        drawn["labels"] = place_labels(ax, {n: pos[n] for n in labelled}, size)
    ax.set_title(title, fontsize=10, wrap=True)
    _legend(ax, entries)
    drawn["legend"] = [label for label, _ in entries]
    return drawn


def place_labels(ax, points: dict[str, tuple[float, float]], marker_size: float) -> list:
    """Label each point beside its marker, choosing for each of eight places around it the one
    whose text overlaps the labels already placed and the markers least (measured from the
    rendered text extents); returns the text artists."""
    if not points:
        return []
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    gap = math.sqrt(marker_size) / 2 + 2  # points from the marker's centre
    places = [
        (gap, 0, "left", "center"),
        (-gap, 0, "right", "center"),
        (0, gap, "center", "bottom"),
        (0, -gap, "center", "top"),
        (gap, gap, "left", "bottom"),
        (-gap, gap, "right", "bottom"),
        (gap, -gap, "left", "top"),
        (-gap, -gap, "right", "top"),
    ]
    to_pixels = ax.transData.transform
    radius = gap * fig.dpi / 72
    taken = [_box(*to_pixels(xy), radius) for xy in points.values()]  # the markers themselves
    frame = ax.get_window_extent(renderer)
    texts = []
    for name in sorted(points, key=lambda n: (points[n][1], points[n][0])):
        text = ax.annotate(
            name, points[name], textcoords="offset points", fontsize=7, zorder=5, xytext=(0, 0)
        )
        best = None
        for dx, dy, ha, va in places:
            text.set_position((dx, dy))
            text.set_ha(ha)
            text.set_va(va)
            extent = text.get_window_extent(renderer)
            box = (extent.x0 - 1, extent.y0 - 1, extent.x1 + 1, extent.y1 + 1)
            cost = sum(_overlap(box, other) for other in taken) + 4 * _outside(box, frame)
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
            if cost == 0:
                break
        assert best is not None
        _, dx, dy, ha, va, box = best
        text.set_position((dx, dy))
        text.set_ha(ha)
        text.set_va(va)
        taken.append(box)
        texts.append(text)
    return texts


def _box(x: float, y: float, r: float) -> tuple[float, float, float, float]:
    return (x - r, y - r, x + r, y + r)


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box, frame) -> float:
    inside = _overlap(box, (frame.x0, frame.y0, frame.x1, frame.y1))
    return (box[2] - box[0]) * (box[3] - box[1]) - inside


def draw_topology(
    result: RunResult,
    *,
    ax=None,
    at: float | None = None,
    path: Sequence[str] | None = None,
    pos: dict | None = None,
    seed: int = 0,
    title: str | None = None,
) -> dict:
    """The network at the end of a run (or at ``at``): links up (solid), links down (dashed),
    members not running (grey), optionally one path highlighted with its endpoints."""
    ax = _axes(ax)
    running, up = _state(result, at)
    title = title or _name(result, f"{len(running)} members, {len(up)} links up", at)
    return _draw_network(result, ax, at=at, pos=pos, seed=seed, path=path or (), title=title)


def draw_route(
    result: RunResult, src: str, dst: str, *, ax=None, at: float | None = None, **kw
) -> dict:
    """The topology with the routing tables' route from ``src`` to ``dst`` highlighted."""
    if at is None:
        result.member(src)
        result.member(dst)
    else:
        result.table_at(src, at)  # names a member not running then
    path = route_path(result, src, dst, at)
    label = " -> ".join(path) if path else "no route"
    title = _name(result, f"route {src} to {dst}: {label}", at)
    drawn = draw_topology(result, ax=ax, at=at, path=path, title=title, **kw)
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
        title=_name(result, f"message {msg_id}: {' -> '.join(msg['path'])} {fate}"),
        **kw,
    )


def draw_view(
    result: RunResult,
    member: str,
    *,
    ax=None,
    at: float | None = None,
    pos=None,
    seed: int = 0,
) -> dict:
    """One member's view against the links up: links it knows (blue), links it still believes
    in that are gone (red), links it has not heard of (orange, dashed)."""
    if at is None:
        result.member(member)
    ax = _axes(ax)
    drawn = _draw_network(result, ax, at=at, pos=pos, seed=seed, view_of=member, title="")
    ax.set_title(
        _name(
            result,
            f"{member}'s view: {len(drawn['known'])} known, {len(drawn['stale'])} stale, "
            f"{len(drawn['unheard'])} unheard",
            at,
        ),
        fontsize=10,
    )
    return drawn


def draw_routing_table(
    result: RunResult,
    member: str,
    *,
    ax=None,
    at: float | None = None,
    page: int = 1,
) -> dict:
    """A member's routing table: destination, next hop, hops. A long table is laid out in
    columns of :data:`TABLE_ROWS` rows, :data:`TABLE_COLUMNS` columns a page; ``page`` picks
    the page, and the title says which of how many it is."""
    table = result.table(member) if at is None else result.table_at(member, at)
    rows = [[d, r["next_hop"], str(r["hops"])] for d, r in sorted(table.items())]
    per_page = TABLE_ROWS * TABLE_COLUMNS
    pages = max(1, math.ceil(len(rows) / per_page))
    if not 1 <= page <= pages:
        raise ValueError(f"page {page} of a table with {pages} page(s)")
    shown = rows[(page - 1) * per_page : page * per_page]
    columns = [shown[i : i + TABLE_ROWS] for i in range(0, len(shown), TABLE_ROWS)] or [[]]
    tallest = max(len(c) for c in columns)
    ax = _axes(ax, (3.2 * len(columns), 0.9 + 0.2 * (tallest + 1)))
    ax.set_axis_off()
    for i, block in enumerate(columns):
        if block:
            cells = ax.table(
                cellText=block,
                colLabels=["destination", "next hop", "hops"],
                bbox=[
                    i / len(columns),
                    1 - (len(block) + 1) / (tallest + 1),
                    0.96 / len(columns),
                    (len(block) + 1) / (tallest + 1),
                ],
                cellLoc="left",
            )
            cells.auto_set_font_size(False)
            cells.set_fontsize(7)
    what = f"routing table of {member}"
    if pages > 1:
        first = (page - 1) * per_page + 1
        last = first + len(shown) - 1
        what += f", page {page} of {pages} (destinations {first}-{last} of {len(rows)})"
    ax.set_title(_name(result, what, at), fontsize=9)
    return {"ax": ax, "rows": len(shown), "total": len(rows), "page": page, "pages": pages}


def draw_route_matrix(result: RunResult, *, ax=None, at: float | None = None) -> dict:
    """Every routing table at once, as a heatmap: hops from each member (rows) to each
    destination (columns); blank where there is no route."""
    import numpy as np

    members = sorted(result.members) if at is None else result.members_at(at)
    index = {m: i for i, m in enumerate(members)}
    hops = np.full((len(members), len(members)), np.nan)
    for m in members:
        table = result.routing_tables[m] if at is None else result.table_at(m, at)
        for dst, route in table.items():
            if dst in index:
                hops[index[m], index[dst]] = route["hops"]
    for i in range(len(members)):
        hops[i, i] = 0
    ax = _axes(ax, (7, 6))
    image = ax.imshow(np.ma.masked_invalid(hops), cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="hops", shrink=0.8)
    if len(members) <= 40:
        ax.set_xticks(range(len(members)), members, rotation=90, fontsize=7)
        ax.set_yticks(range(len(members)), members, fontsize=7)
    ax.set_xlabel("destination")
    ax.set_ylabel("member")
    missing = int(np.isnan(hops).sum())
    what = "hops of every route" + (f" ({missing} without a route, blank)" if missing else "")
    ax.set_title(_name(result, what, at), fontsize=10)
    return {"ax": ax, "image": image, "size": len(members), "unrouted": missing}


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
    _legend(ax, [("linked", {"marker": "s", "color": "#08306b", "linestyle": "none"})])
    ax.set_title(_name(result, "adjacency at the end"), fontsize=10)
    return {"ax": ax, "image": image, "size": len(members), "ones": sum(map(sum, matrix))}


#: how each kind of convergence window is drawn: colour, hatch, legend label
WINDOWS = {
    "converged": ("#9ecae1", "", "converging"),
    "not_converged": (BELIEVED, "", "not converged"),
    "superseded": ("#d9d9d9", "//", "superseded by the next event"),
    "pending": ("#d9d9d9", "", "pending"),
}


def draw_timeline(result: RunResult, *, ax=None) -> dict:
    """The run over time: topology events, convergence windows, deliveries and drops."""
    from matplotlib.patches import Patch

    ax = _axes(ax, (9, 3.5))
    topo = [e for e in result.events if e["kind"] not in ("send", "traffic")]
    for i, e in enumerate(topo):
        ax.axvline(e["at"], color="#999999", linewidth=0.8, linestyle=":")
        ax.annotate(
            e["label"],
            (e["at"], 1),
            xycoords=ax.get_xaxis_transform(),
            xytext=(2, 3 + 11 * (i % 3)),  # three staggered rows: close events stay legible
            textcoords="offset points",
            fontsize=7,
            ha="left",
            va="bottom",
        )
    kinds = set()
    windows = result.convergence
    for c, following in zip(windows, [*windows[1:], None], strict=True):
        end = c["converged_at"]
        if end is None:
            end = following["at"] if following else result.duration
        colour, hatch, _ = WINDOWS.get(c["status"], WINDOWS["pending"])
        ax.broken_barh(
            [(c["at"], max(end - c["at"], 1e-3))],
            (-1.4, 0.8),
            facecolor=colour,
            hatch=hatch,
            edgecolor="#666666" if hatch else colour,
        )
        kinds.add(c["status"])
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
            color="#000000",
            label=f"dropped ({len(dropped)})",
        )
    handles, _ = ax.get_legend_handles_labels()
    for status in sorted(kinds):
        colour, hatch, label = WINDOWS.get(status, WINDOWS["pending"])
        handles.append(Patch(facecolor=colour, hatch=hatch, edgecolor="#666666", label=label))
    ax.set_xlabel("scenario time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_xlim(0, max(result.duration, 1e-3))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    ax.set_title(_name(result, "timeline"), fontsize=10, pad=44)
    return {
        "ax": ax,
        "events": len(topo),
        "intervals": sum(1 for c in windows if c["converged_at"] is not None),
        "delivered": len(delivered),
        "dropped": len(dropped),
        "legend": [h.get_label() for h in handles],
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
    ax.set_title(_name(runs[0], "latency CDF") if runs else "latency CDF", fontsize=10)
    return {"ax": ax, "lines": lines}


def _hop_counts(result: RunResult) -> list[int]:
    return [len(m["path"]) - 1 for m in result.messages if m["delivered_at"] is not None]


def draw_hops(results: RunResult | Sequence[RunResult], *, ax=None) -> dict:
    """Hop counts of delivered messages; several runs (sim and real) as paired bars."""
    ax = _axes(ax)
    runs = [results] if isinstance(results, RunResult) else list(results)
    counts = [_hop_counts(r) for r in runs]
    top = max((max(c) for c in counts if c), default=0)
    width = 0.8 / max(len(runs), 1)
    for i, (run, hops) in enumerate(zip(runs, counts, strict=True)):
        xs = [h - 0.4 + width * (i + 0.5) for h in range(top + 1)]
        ax.bar(xs, [hops.count(h) for h in range(top + 1)], width=width, label=run.backend)
    ax.set_xticks(range(top + 1))
    ax.set_xlabel("hops")
    ax.set_ylabel("delivered messages")
    if len(runs) > 1:
        ax.legend()
    ax.set_title(_name(runs[0], "hop counts") if runs else "hop counts", fontsize=10)
    return {"ax": ax, "messages": sum(len(c) for c in counts)}


def draw_comparison(sim: RunResult, real: RunResult, *, fig=None) -> dict:
    """Real against simulated: latency CDFs, hop counts side by side, convergence times."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if fig is None:
        fig = plt.figure(figsize=(14, 4.5), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.3])
    draw_latency_cdf([sim, real], ax=axes[0])
    draw_hops([sim, real], ax=axes[1])
    ax = axes[2]
    labels = [f"{c['event']} @{c['at']:g}s" for c in sim.convergence]
    ys = range(len(labels))
    for shift, run, colour in ((-0.2, sim, SIM), (0.2, real, REAL)):
        for y, c in zip(ys, run.convergence, strict=False):
            if c["converged_at"] is None:  # no bar to draw: say why instead
                ax.text(
                    0,
                    y + shift,
                    f" {run.backend}: {c['status'].replace('_', ' ')}",
                    va="center",
                    fontsize=7,
                    color="#555555",
                )
            else:
                ax.barh(y + shift, convergence_time(c) * 1000, height=0.4, color=colour)
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms to converge")
    pairs = (("sim", SIM), ("real", REAL))
    ax.legend(handles=[Patch(color=c, label=n) for n, c in pairs], loc="lower right", fontsize=8)
    ax.set_title("convergence after each event", fontsize=10)
    for a in axes[:2]:
        a.set_title(a.get_title().split(": ", 1)[-1], fontsize=10)
    fig.suptitle(f"{sim.scenario}: real against simulated")
    common = {m["id"] for m in sim.delivered} & {m["id"] for m in real.delivered}
    return {"fig": fig, "axes": list(axes), "common_messages": len(common)}


def animate(result: RunResult, path: str, *, frames: int = 40, fps: int = 8, seed: int = 0) -> dict:
    """An animation of a run from its timeline (links failing and healing, members coming and
    going, messages hopping), saved as a GIF (Pillow) or, for a ``.mp4`` path, with ffmpeg.
    Results without a timeline are refused (:class:`~peerlab.errors.ResultsError`)."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    history = result.history  # refuses results without a timeline before anything is drawn
    pos = layout(result, seed)
    end = max(result.duration, 1e-3)
    times = [round(end * i / max(frames - 1, 1), 6) for i in range(frames)]
    fig, ax = plt.subplots(figsize=(6, 5.5))

    def frame(i: int) -> None:
        t = times[i]
        ax.clear()
        _draw_network(result, ax, at=t, pos=pos, seed=seed, title=_name(result, "", t))
        dots = []
        for m, hops in zip(result.messages, history.hops, strict=True):
            k = sum(1 for x in hops[1:] if x <= t)
            if not hops[0] <= t < hops[-1] or k + 1 >= min(len(hops), len(m["path"])):
                continue
            (x0, y0), (x1, y1) = pos[m["path"][k]], pos[m["path"][k + 1]]
            f = (t - hops[k]) / max(hops[k + 1] - hops[k], 1e-9)
            dots.append((x0 + (x1 - x0) * f, y0 + (y1 - y0) * f))
        if dots:
            ax.scatter(*zip(*dots, strict=True), color=HIGHLIGHT, s=25, zorder=6)

    anim = animation.FuncAnimation(fig, frame, frames=frames)
    writer = (
        animation.FFMpegWriter(fps=fps)
        if path.endswith(".mp4")
        else animation.PillowWriter(fps=fps)
    )
    anim.save(path, writer=writer)
    plt.close(fig)
    return {
        "path": path,
        "frames": frames,
        "times": times,
        "link_changes": len(history.link_changes()),
    }


def overview(result: RunResult, path: str, *, dpi: int = 100) -> str:
    """One PNG with the topology and the timeline of a run; returns the path."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 5), layout="constrained")
    grid = fig.add_gridspec(1, 3)
    draw_topology(result, ax=fig.add_subplot(grid[0, 0]))
    draw_timeline(result, ax=fig.add_subplot(grid[0, 1:]))
    fig.savefig(path, dpi=dpi)
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
    "tables": draw_route_matrix,
}
