"""The run viewer: one self-contained HTML page that replays a run from its results.

The page is hand-written SVG driven by a few hundred lines of JavaScript (``viewer.js``), both
inlined with the run's timeline as JSON: it opens offline, from a file, with no server and
nothing fetched, and it is as small as the run's data. It shows the topology with links
coloured by state, a time slider and a play button, messages hopping along their paths,
convergence windows on a strip below, and for a member clicked its routing table and its view
against the links established at that instant.
"""

from __future__ import annotations

import html
import importlib.resources
import json
from pathlib import Path
from typing import Any

from peerlab.results import RunResult

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 12px; color: #222; }}
h1 {{ font-size: 18px; margin: 0 0 6px; }}
#main {{ display: flex; gap: 16px; align-items: flex-start; }}
#topology {{ flex: 1 1 auto; width: 66%; border: 1px solid #ddd; background: #fff; }}
#side {{ flex: 0 0 300px; max-height: 80vh; overflow: auto; }}
#controls {{ display: flex; gap: 8px; align-items: center; margin: 8px 0; }}
#slider {{ flex: 1; }}
#time {{ font-variant-numeric: tabular-nums; min-width: 6em; }}
#strip {{ width: 100%; height: auto; border: 1px solid #ddd; cursor: pointer; }}
.link {{ stroke-width: 3; }}
.link[data-state=up] {{ stroke: #2b7bba; }}
.link[data-state=down] {{ stroke: #c8c8c8; stroke-dasharray: 6 5; stroke-width: 2; }}
.link[data-state=stale] {{ stroke: #d7301f; stroke-width: 4; }}
.link[data-state=unheard] {{ stroke: #fdae61; stroke-dasharray: 6 5; stroke-width: 4; }}
.big .link {{ stroke-width: 1.2; }}
.big .link[data-state=up] {{ stroke: #9ecae1; }}
.member {{ cursor: pointer; }}
.member circle {{ fill: #fff; stroke: #333; stroke-width: 1.5; }}
.member.down circle {{ fill: #e4e4e4; stroke: #999; stroke-dasharray: 3 2; }}
.member.selected circle {{ fill: #fdd0a2; stroke: #e6550d; stroke-width: 3; }}
.member text {{ font-size: 11px; text-anchor: middle; pointer-events: none; }}
.big .member text {{ display: none; }}
.big .member.selected text, .big .member:hover text {{ display: inline; }}
.message.ok {{ fill: #e6550d; }}
.message.dropped {{ fill: #000; }}
.window.converged {{ fill: #9ecae1; }}
.window.not_converged {{ fill: #d7301f; }}
.window.superseded, .window.pending {{ fill: #ccc; }}
.tick {{ stroke: #999; stroke-dasharray: 2 2; }}
#strip text {{ font-size: 9px; fill: #444; }}
#strip .sent {{ fill: #2b7bba; }}
#strip .lost {{ fill: #000; }}
.cursor {{ stroke: #e6550d; stroke-width: 2; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; margin: 4px 0; }}
.legend i {{ display: inline-block; width: 22px; height: 0; border-top: 3px solid;
  vertical-align: middle; margin-right: 4px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border-bottom: 1px solid #eee; padding: 2px 8px; text-align: left; }}
.stale-text {{ color: #d7301f; }} .unheard-text {{ color: #b35806; }}
.hint {{ color: #777; }}
</style></head>
<body>
<h1>{title}</h1>
<div class="legend">
<span><i style="border-color:#2b7bba"></i>link up</span>
<span><i style="border-color:#c8c8c8;border-top-style:dashed"></i>link down</span>
<span><i style="border-color:#d7301f"></i>believed, but down (selected member)</span>
<span><i style="border-color:#fdae61;border-top-style:dashed"></i>up, not heard of (selected)</span>
<span>&#9679; <span style="color:#e6550d">message</span> /
 <span>dropped</span></span>
<span><i style="border-color:#9ecae1;border-top-width:8px"></i>converging</span>
<span><i style="border-color:#d7301f;border-top-width:8px"></i>not converged</span>
<span><i style="border-color:#ccc;border-top-width:8px"></i>superseded</span>
</div>
<div id="controls"><button id="play" type="button">play</button>
<label>speed <select id="speed"><option value="0.01">0.01x</option><option value="0.1">0.1x</option>
<option value="0.5">0.5x</option><option value="1" selected>1x</option><option value="2">2x</option>
</select></label>
<input id="slider" type="range" min="0" value="0" aria-label="scenario time">
<span id="time"></span></div>
<div id="main"><svg id="topology" class="{size}" role="img" aria-label="topology"></svg>
<div id="side"><p id="summary"></p><div id="member"></div></div></div>
<svg id="strip" role="img" aria-label="convergence timeline"></svg>
<script type="application/json" id="run-data">{data}</script>
<script>{script}</script>
</body></html>
"""


def page_data(result: RunResult) -> dict[str, Any]:
    """What the page draws, as JSON-ready data: the timeline with members numbered, positions
    scaled to the unit square (y down), every link the run ever had, messages and windows."""
    from peerlab.plot import layout

    history = result.history
    names = history.names
    number = {m: i for i, m in enumerate(names)}
    pos = layout(result)
    xs = [pos[m][0] for m in names if m in pos]
    ys = [pos[m][1] for m in names if m in pos]
    x0, y1 = min(xs, default=0.0), max(ys, default=0.0)
    width = (max(xs, default=0.0) - x0) or 1.0
    height = y1 - min(ys, default=0.0)

    def place(m: str) -> list[float]:
        x, y = pos.get(m, (x0, y1))
        return [round((x - x0) / width, 4), round((y1 - y) / height, 4) if height else 0.5]

    links = {tuple(sorted((a, b))) for a, b in (*result.initial_links, *result.final_links)}
    links.update((a, b) for _, a, b, _, _ in history.links)
    return {
        "scenario": result.scenario,
        "duration": result.duration,
        "names": names,
        "pos": [place(m) for m in names],
        "height": round(min(max(1000 * height / width, 300), 560)),
        "links": sorted([number[a], number[b]] for a, b in links),
        "linkRows": [[t, number[a], number[b], up] for t, a, b, up, _ in history.links],
        "memberRows": [[t, number[m], up] for t, m, up, _ in history.members],
        "routes": history.routes,
        "views": history.views,
        "viewsOmitted": history.omitted.get("views"),
        "messages": [
            [
                number[m["src"]],
                number[m["dst"]],
                [number[x] for x in m["path"]],
                times,
                m["delivered_at"] is not None,
            ]
            for m, times in zip(result.messages, history.hops, strict=True)
        ],
        "convergence": [
            [c["at"], c["converged_at"], c["status"], c["event"]] for c in result.convergence
        ],
        "events": [[e["at"], e["label"]] for e in result.events],
    }


def page(result: RunResult) -> str:
    """The viewer of ``result`` as one self-contained HTML document."""
    script = importlib.resources.files("peerlab").joinpath("viewer.js").read_text()
    data = json.dumps(page_data(result), separators=(",", ":"))
    return _PAGE.format(
        title=html.escape(f"{result.scenario} ({result.backend}, seed {result.seed})"),
        size="big" if len(result.history.names) > 50 else "small",
        data=data.replace("</", "<\\/"),  # the JSON may not close its script element
        script=script,
    )


def write(result: RunResult, path: str | Path) -> Path:
    """Write the viewer of ``result`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(page(result))
    return path


def inline_html(result: RunResult, height: int = 680) -> str:
    """The viewer for a notebook: the page inside an iframe, so that its script and styles
    stay apart from the notebook's and from other viewers'."""
    return (
        f'<iframe srcdoc="{html.escape(page(result), quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd"></iframe>'
    )
