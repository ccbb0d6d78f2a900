"""Every plot renders on Agg; topology and route plots are checked for what they drew."""

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.collections import LineCollection
from PIL import Image

from peerlab import plot
from peerlab.cli import main
from peerlab.errors import UnknownMember
from peerlab.runner import run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ring():
    return run(ROOT / "scenarios" / "ring-failover.yaml", "sim")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rendered(fig, tmp_path) -> Image.Image:
    path = tmp_path / "x.png"
    fig.savefig(path)
    image = Image.open(path)
    low, high = image.convert("L").getextrema()
    assert image.size[0] > 100 and low < high  # not blank
    return image


def edge_segments(ax) -> list[int]:
    return [len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection)]


def test_topology_draws_every_member_and_link(ring, tmp_path):
    drawn = plot.draw_topology(ring)
    ax = drawn["ax"]
    assert drawn["nodes"] == 6  # a..f (e has left, still drawn as departed)
    assert drawn["edges_up"] == len(ring.final_links) == 5
    assert drawn["edges_down"] == 2  # d-e and e-a went with e
    assert edge_segments(ax) == [5, 2]
    rendered(ax.figure, tmp_path)


def test_route_highlights_the_path_edges(ring, tmp_path):
    drawn = plot.draw_route(ring, "a", "d")
    assert drawn["path"] == ["a", "b", "c", "d"]
    assert drawn["highlighted"] == [("a", "b"), ("b", "c"), ("c", "d")]
    assert edge_segments(drawn["ax"])[-1] == 3
    assert "a -> b -> c -> d" in drawn["ax"].get_title()
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


def test_view_against_truth(ring, tmp_path):
    drawn = plot.draw_view(ring, "a")
    assert drawn["known"] == sorted(tuple(x) for x in ring.final_links)
    rendered(drawn["ax"].figure, tmp_path)
    stale = type(ring).from_dict(ring.to_dict())
    stale.views["a"] = [*stale.views["a"], ["d", "e"]]
    assert plot.draw_view(stale, "a")["stale"] == [("d", "e")]


@pytest.mark.parametrize("name", ["timeline", "latency", "hops", "adjacency"])
def test_run_plots_render(ring, tmp_path, name):
    drawn = plot.KINDS[name](ring)
    rendered(drawn["ax"].figure, tmp_path)


def test_plot_contents(ring):
    assert plot.draw_timeline(ring)["events"] == 8
    assert plot.draw_hops(ring)["messages"] == 202
    assert plot.draw_adjacency(ring)["ones"] == 2 * len(ring.final_links)
    assert plot.draw_routing_table(ring, "a")["rows"] == len(ring.routing_tables["a"])


def test_comparison_figure(ring, tmp_path):
    drawn = plot.draw_comparison(ring, ring)
    assert drawn["common_messages"] == 202 and len(drawn["axes"]) == 3
    rendered(drawn["fig"], tmp_path)


def test_animation_is_a_gif_with_many_frames(ring, tmp_path):
    out = tmp_path / "run.gif"
    info = plot.animate(ring, str(out), frames=12)
    assert info["link_changes"] > 0
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames > 1


def test_plot_command(tmp_path, capsys):
    out = tmp_path / "route.png"
    code = main(
        [
            "plot",
            str(ROOT / "scenarios" / "line.yaml"),
            "-o",
            str(out),
            "--kind",
            "route",
            "--src",
            "n0",
            "--dst",
            "n3",
            "--quiet",
        ]
    )
    assert code == 0 and out.stat().st_size > 1000
    results = tmp_path / "r.json"
    main(["run", str(ROOT / "scenarios" / "line.yaml"), "--out", str(results), "--quiet"])
    assert main(["plot", str(results), "-o", str(tmp_path / "t.png"), "--kind", "timeline"]) == 0
    assert (
        main(
            [
                "plot",
                str(results),
                "-o",
                str(tmp_path / "v.png"),
                "--kind",
                "view",
                "--member",
                "zz",
            ]
        )
        == 2
    )
    assert "--member: no member 'zz' at the end of 'line'" in capsys.readouterr().err
    route = ["plot", str(results), "-o", str(tmp_path / "r.png"), "--kind", "route"]
    assert main([*route, "--src", "n0", "--dst", "zz"]) == 2
    assert "--dst: no member 'zz' at the end of 'line' (members: n0, n1" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
    assert main([*route, "--src", "zz", "--dst", "n3"]) == 2
    assert "--src: no member 'zz' at the end of 'line'" in capsys.readouterr().err


def test_positions_from_the_topology_file_are_used():
    result = run(ROOT / "scenarios" / "abilene.yaml", "sim")
    pos = plot.layout(result)
    assert pos["Seattle"] == (-122.33, 47.61)  # longitude, latitude from the GML file
    assert pos["New York"][0] > pos["Chicago"][0]  # east is right
    drawn = plot.draw_route(result, "Seattle", "Atlanta")
    assert drawn["path"][0] == "Seattle" and drawn["path"][-1] == "Atlanta"
