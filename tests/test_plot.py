"""Every plot renders on Agg without a warning, and is checked for what it drew: legends,
titles, layouts, label overlaps measured from the rendered text, animation frames."""

import warnings
from itertools import combinations
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from PIL import Image

from peerlab import plot
from peerlab.cli import main
from peerlab.errors import ResultsError, UnknownMember
from peerlab.results import RunResult
from peerlab.runner import run
from peerlab.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
HUNDRED = """
name: random-100
seed: 3
members: {count: 100, prefix: m}
topology:
  generator: {kind: random_regular, degree: 3}
events:
  - {at: 1s, traffic: {count: 50, size: 100}}
  - {at: 1.5s, crash: m50}
settle: 1s
"""


@pytest.fixture(scope="module")
def ring():
    return run(ROOT / "scenarios" / "ring-failover.yaml", "sim")


@pytest.fixture(scope="module")
def hundred():
    return run(load_scenario("random-100.yaml", HUNDRED), "sim")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def no_warnings():
    """No matplotlib (or other) warning is raised while drawing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [str(w.message) for w in caught] == []


def rendered(fig, tmp_path) -> Image.Image:
    path = tmp_path / "x.png"
    fig.savefig(path)
    image = Image.open(path)
    low, high = image.convert("L").getextrema()
    assert image.size[0] > 100 and low < high  # not blank
    return image


def edge_segments(ax) -> list[int]:
    return [len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection)]


def legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def overlaps(texts) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose rendered extents overlap."""
    renderer = texts[0].figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    return [(a, b) for (a, p), (b, q) in combinations(boxes, 2) if p.overlaps(q)]


def test_topology_draws_every_member_and_link_with_a_legend(ring, tmp_path):
    drawn = plot.draw_topology(ring)
    ax = drawn["ax"]
    assert drawn["nodes"] == 6  # a..f (e has left, still drawn, as not running)
    assert drawn["edges_up"] == len(ring.final_links) == 5
    assert drawn["edges_down"] == 2  # d-e and e-a went with e
    assert edge_segments(ax) == [5, 2]
    assert legend(ax) == ["link up (5)", "link down (2)", "member not running"]
    assert ax.get_title().startswith("ring-failover (sim): ")
    rendered(ax.figure, tmp_path)


def test_route_highlights_the_path_and_marks_its_endpoints(ring, tmp_path):
    drawn = plot.draw_route(ring, "a", "d")
    assert drawn["path"] == ["a", "b", "c", "d"]
    assert drawn["highlighted"] == [("a", "b"), ("b", "c"), ("c", "d")]
    assert edge_segments(drawn["ax"])[-1] == 3
    assert "a -> b -> c -> d" in drawn["ax"].get_title()
    assert {"path", "source a", "destination d"} <= set(legend(drawn["ax"]))
    rendered(drawn["ax"].figure, tmp_path)


def test_message_path_and_missing_route(ring):
    msg = ring.messages[1]
    drawn = plot.draw_message(ring, msg["id"])
    assert len(drawn["highlighted"]) == len(msg["path"]) - 1
    assert plot.route_path(ring, "a", "e") == []
    with pytest.raises(ValueError, match="no message 'nope' in the results of"):
        plot.draw_message(ring, "nope")


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: plot.draw_view(r, "zz"),
        lambda r: plot.draw_routing_table(r, "zz"),
        lambda r: plot.draw_route(r, "zz", "a"),
        lambda r: plot.draw_route(r, "a", "zz"),
    ],
    ids=["view", "table", "route from", "route to"],
)
def test_drawing_for_a_member_not_in_the_results_names_it(ring, draw):
    with pytest.raises(UnknownMember, match=r"no member 'zz' at the end of .* \(members: a, b"):
        draw(ring)


def test_view_against_truth_with_its_legend(ring, tmp_path):
    drawn = plot.draw_view(ring, "a")
    assert drawn["known"] == sorted(tuple(x) for x in ring.final_links)
    assert legend(drawn["ax"])[:3] == [
        "link it knows (5)",
        "believed, but down (0)",
        "up, not heard of (0)",
    ]
    rendered(drawn["ax"].figure, tmp_path)
    stale = RunResult.from_dict(ring.to_dict())
    stale.views["a"] = [*stale.views["a"], ["d", "e"]]
    assert plot.draw_view(stale, "a")["stale"] == [("d", "e")]


def test_time_slices_draw_that_instant(ring):
    during = plot.draw_topology(ring, at=9.8)  # the partition, noticed
    assert during["edges_up"] == len(ring.links_at(9.8)) == 3
    assert "at 9.8s" in during["ax"].get_title()
    view = plot.draw_view(ring, "a", at=9.62)  # a still believes in the cut links
    assert view["stale"] == [("b", "c"), ("c", "f")]
    assert plot.draw_route(ring, "a", "c", at=2.5)["path"] == ["a", "e", "d", "c"]
    assert plot.draw_routing_table(ring, "d", at=6.5)["rows"] == len(ring.table_at("d", 6.5))
    with pytest.raises(UnknownMember, match=r"'d' was not running at 5\.5s"):
        plot.draw_view(ring, "d", at=5.5)


def test_a_grid_is_drawn_as_a_grid():
    result = run(ROOT / "scenarios" / "grid.yaml", "sim")
    pos = plot.layout(result)
    assert {pos[f"g{i:02d}"] for i in range(16)} == {
        (float(c), -float(r)) for r in range(4) for c in range(4)
    }
    assert pos["g00"] == (0.0, 0.0) and pos["g05"] == (1.0, -1.0)


def test_a_ring_is_a_circle_and_a_newcomer_sits_inside_it(ring):
    pos = plot.layout(ring)
    radii = [np.hypot(*pos[m]) for m in "abcde"]
    assert max(radii) - min(radii) < 1e-9 and np.hypot(*pos["f"]) < min(radii)


def test_geographic_labels_do_not_overlap_and_stay_in_the_figure(tmp_path):
    result = run("abilene", "sim")
    assert plot.layout(result)["Seattle"] == (-122.33, 47.61)  # longitude, latitude
    drawn = plot.draw_route(result, "Seattle", "Atlanta")
    fig = drawn["ax"].figure
    rendered(fig, tmp_path)
    labels = drawn["labels"]
    assert sorted(t.get_text() for t in labels) == sorted(result.members)
    assert overlaps(labels) == []
    frame = fig.bbox
    renderer = fig.canvas.get_renderer()
    for text in labels:
        box = text.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0, text


def test_a_hundred_members_fade_and_label_only_what_matters(hundred, tmp_path):
    drawn = plot.draw_topology(hundred)
    labelled = {t.get_text() for t in drawn["labels"]}
    down_ends = {m for link in hundred.initial_links if "m50" in link for m in link}
    assert labelled == down_ends  # the crashed member and its neighbours, nobody else
    assert legend(drawn["ax"])[:2] == [f"link up ({drawn['edges_up']})", "link down (3)"]
    assert overlaps(drawn["labels"]) == []
    rendered(drawn["ax"].figure, tmp_path)


def test_the_table_of_a_hundred_member_run_shows_every_row_apart(hundred, tmp_path):
    drawn = plot.draw_routing_table(hundred, "m01")
    assert drawn["rows"] == drawn["total"] == 98 and drawn["pages"] == 1
    fig = drawn["ax"].figure
    rendered(fig, tmp_path)
    cells = [c for table in drawn["ax"].tables for c in table.get_celld().values()]
    texts = [c.get_text() for c in cells]
    assert sum(t.get_text() == "m05" or t.get_text().startswith("m") for t in texts) >= 98
    destinations = {t.get_text() for t in texts}
    assert set(hundred.routing_tables["m01"]) <= destinations
    assert overlaps([*texts, drawn["ax"].title]) == []


def test_a_table_too_long_for_a_page_says_it_pages(hundred):
    first = plot.draw_routing_table(hundred, "m01", page=1)
    plot.TABLE_ROWS, rows = 20, plot.TABLE_ROWS
    try:
        paged = plot.draw_routing_table(hundred, "m01", page=2)
    finally:
        plot.TABLE_ROWS = rows
    assert first["pages"] == 1 and paged["pages"] == 2 and paged["rows"] == 98 - 60
    assert "page 2 of 2 (destinations 61-98 of 98)" in paged["ax"].get_title()
    with pytest.raises(ValueError, match="page 3 of a table with 1 page"):
        plot.draw_routing_table(hundred, "m01", page=3)


def test_the_route_matrix_shows_every_table_at_once(hundred, tmp_path):
    drawn = plot.draw_route_matrix(hundred)
    assert drawn["size"] == 99 and drawn["unrouted"] == 0
    assert drawn["image"].colorbar.ax.get_ylabel() == "hops"
    rendered(drawn["ax"].figure, tmp_path)


@pytest.mark.parametrize("name", ["timeline", "latency", "hops", "adjacency"])
def test_run_plots_render_and_name_their_scenario(ring, tmp_path, name):
    drawn = plot.KINDS[name](ring)
    assert drawn["ax"].get_title().startswith("ring-failover (sim): ")
    rendered(drawn["ax"].figure, tmp_path)


def test_plot_contents(ring):
    timeline = plot.draw_timeline(ring)
    assert timeline["events"] == 8 and timeline["legend"] == ["delivered (202)", "converging"]
    assert plot.draw_hops(ring)["messages"] == 202
    assert plot.draw_adjacency(ring)["ones"] == 2 * len(ring.final_links)
    assert plot.draw_routing_table(ring, "a")["rows"] == len(ring.routing_tables["a"])


def test_the_timeline_explains_windows_without_a_bar(ring):
    data = ring.to_dict()
    data["convergence"][3].update(converged_at=None, status="superseded")
    drawn = plot.draw_timeline(RunResult.from_dict(data))
    assert "superseded by the next event" in drawn["legend"]


def test_comparison_figure_pairs_hop_histograms_and_explains_missing_bars(ring, tmp_path):
    data = ring.to_dict()
    data["backend"] = "real"
    data["convergence"][3].update(converged_at=None, status="superseded")
    drawn = plot.draw_comparison(ring, RunResult.from_dict(data))
    assert drawn["common_messages"] == 202 and len(drawn["axes"]) == 3
    hops = drawn["axes"][1]
    assert [c.get_label() for c in hops.containers] == ["sim", "real"]
    assert [t.get_text() for t in hops.get_legend().get_texts()] == ["sim", "real"]
    notes = [t.get_text() for t in drawn["axes"][2].texts]
    assert notes == [" real: superseded"]
    assert drawn["fig"].get_suptitle() == "ring-failover: real against simulated"
    rendered(drawn["fig"], tmp_path)
    ticks = drawn["axes"][2].get_yticklabels()
    assert overlaps(ticks) == []


def frames_of(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        out = []
        for i in range(gif.n_frames):
            gif.seek(i)
            out.append(np.asarray(gif.convert("RGB")))
    return out


def test_animation_from_results_changes_exactly_where_the_timeline_says(tmp_path, capsys):
    results, gif = tmp_path / "r.json", tmp_path / "run.gif"
    assert main(["run", "quickstart", "--out", str(results), "--quiet"]) == 0
    command = ["plot", str(results), "-o", str(tmp_path / "t.png"), "--animate", str(gif)]
    assert main([*command, "--frames", "13"]) == 0
    assert "(13 frames, 7 link changes)" in capsys.readouterr().out
    result = RunResult.read(results)
    frames = frames_of(gif)
    times = [round(result.duration * i / 12, 6) for i in range(13)]
    changes = result.history.link_changes()

    def busy(t):  # a message in flight at t is drawn as a dot
        return any(hops[0] <= t < hops[-1] for hops in result.timeline["hops"])

    checked = {"differ": 0, "same": 0}
    # the title (above the axes, whose top is at 0.88 of the figure) names the instant; the
    # rest is the network
    below_title = slice(round(frames[0].shape[0] * 0.12) + 2, None)
    for i in range(12):
        t0, t1 = times[i], times[i + 1]
        if busy(t0) or busy(t1):
            continue
        changed = any(t0 < t <= t1 for t in changes)
        # the GIF's per-frame palette dithers a few pixels a little: count clear changes only
        delta = np.abs(frames[i][below_title].astype(int) - frames[i + 1][below_title]).max(2)
        moved = int((delta > 100).sum())
        assert (moved > 20) if changed else (moved == 0), (t0, t1, moved)
        checked["differ" if changed else "same"] += 1
    assert checked["differ"] >= 2 and checked["same"] >= 3


def test_results_without_a_timeline_are_refused_not_drawn_as_still(ring, tmp_path):
    data = ring.to_dict()
    data["timeline"] = None
    with pytest.raises(ResultsError, match="hold no timeline"):
        plot.animate(RunResult.from_dict(data), str(tmp_path / "x.gif"))
    assert not (tmp_path / "x.gif").exists()


def test_plot_command(tmp_path, capsys):
    out = tmp_path / "route.png"
    line = str(ROOT / "scenarios" / "line.yaml")
    code = main(["plot", line, "-o", str(out), "--kind", "route", "--src", "n0", "--dst", "n3"])
    assert code == 0 and out.stat().st_size > 1000
    results = tmp_path / "r.json"
    main(["run", line, "--out", str(results), "--quiet"])
    assert main(["plot", str(results), "-o", str(tmp_path / "t.png"), "--kind", "timeline"]) == 0
    view = ["plot", str(results), "-o", str(tmp_path / "v.png"), "--kind", "view"]
    assert main([*view, "--member", "zz"]) == 2
    assert "--member: no member 'zz' at the end of 'line'" in capsys.readouterr().err
    route = ["plot", str(results), "-o", str(tmp_path / "r.png"), "--kind", "route"]
    assert main([*route, "--src", "n0", "--dst", "zz"]) == 2
    assert "--dst: no member 'zz' at the end of 'line' (members: n0, n1" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
    assert main([*route, "--src", "zz", "--dst", "n3"]) == 2
    assert "--src: no member 'zz' at the end of 'line'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kind", ["topology", "route", "view", "timeline", "latency", "hops", "adjacency", "table"]
)
def test_every_kind_from_the_command_line_writes_quietly(ring, tmp_path, capsys, kind):
    results = tmp_path / "r.json"
    ring.write(results)
    assert main(["plot", str(results), "-o", str(tmp_path / "k.png"), "--kind", kind]) == 0
    assert capsys.readouterr().err == ""


def test_dpi_and_format(ring, tmp_path, capsys):
    results = tmp_path / "r.json"
    ring.write(results)
    base = ["plot", str(results), "--kind", "topology"]
    for dpi in (50, 100):
        assert main([*base, "-o", str(tmp_path / f"{dpi}.png"), "--dpi", str(dpi)]) == 0
    with Image.open(tmp_path / "50.png") as small, Image.open(tmp_path / "100.png") as large:
        assert abs(large.size[0] / small.size[0] - 2) < 0.1
    assert main([*base, "-o", str(tmp_path / "t.svg")]) == 0
    assert "<svg" in (tmp_path / "t.svg").read_text()[:500]
    assert main([*base, "-o", str(tmp_path / "t"), "--format", "pdf"]) == 0
    assert (tmp_path / "t").read_bytes().startswith(b"%PDF")
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "x.png"), "--format", "svg"]) == 2
    assert "--format svg does not match -o" in capsys.readouterr().err


def test_at_from_the_command_line(ring, tmp_path, capsys):
    results = tmp_path / "r.json"
    ring.write(results)
    base = ["plot", str(results), "-o", str(tmp_path / "a.png")]
    assert main([*base, "--kind", "view", "--member", "d", "--at", "6.5"]) == 0  # d restarted
    assert main([*base, "--kind", "table", "--member", "d", "--at", "5.5"]) == 2
    assert "--at 5.5: 'd' was not running at 5.5s" in capsys.readouterr().err
    assert main([*base, "--kind", "latency", "--at", "1"]) == 2
    assert "--at: --kind latency draws the whole run" in capsys.readouterr().err
