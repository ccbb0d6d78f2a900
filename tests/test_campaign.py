"""Campaigns: a grid of scenario parameters x seeds, run on Dask or in this process, kept in a
folder that resumes, tabulated and plotted."""

import csv
import io
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import peerlab
from peerlab.campaign import (
    campaign_table,
    draw_campaign,
    load_campaign,
    local_cluster,
    read_table,
    run_campaign,
)
from peerlab.cli import main
from peerlab.console import Progress

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "campaigns"
GRID = HERE / "grid.yaml"  # members.count x defaults.latency, 3 values each, seeds 1-3
EXAMPLE = ROOT / "scenarios" / "campaigns" / "degree-vs-size.yaml"
COLUMNS = [
    "members.count",
    "defaults.latency",
    "seed",
    "delivered_ratio",
    "convergence.p50",
    "control_bytes_per_member",
    "wall_time",
    "ok",
]
POINTS = [(n, latency) for n in (6, 8, 10) for latency in ("2ms", "5ms", "10ms")]
RUNS = [(n, latency, seed) for n, latency in POINTS for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def on_two_workers(cluster, tmp_path_factory):
    """The grid campaign run once on the two-worker cluster: its folder, report and the records
    it made, in the order they came."""
    out = tmp_path_factory.mktemp("two-workers")
    seen = []
    report = run_campaign(GRID, out, scheduler=cluster.scheduler_address, on_record=seen.append)
    return out, report, seen


def without_wall_time(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


def test_every_run_of_the_grid_runs_once_on_two_workers(on_two_workers):
    out, report, seen = on_two_workers
    assert (report.total, report.ran, report.skipped, report.failed) == (27, 27, 0, [])
    assert report.where.endswith("(2 workers)")
    done = sorted(
        (r["point"]["members.count"], r["point"]["defaults.latency"], r["seed"]) for r in seen
    )
    assert done == sorted(RUNS)
    assert len({r["key"] for r in seen}) == 27
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == sorted(r["key"] for r in seen)


def test_running_again_runs_nothing(on_two_workers, cluster):
    out, _, _ = on_two_workers
    stored = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    seen = []
    report = run_campaign(GRID, out, scheduler=cluster.scheduler_address, on_record=seen.append)
    assert (report.ran, report.skipped, report.where, seen) == (0, 27, None, [])
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == stored


def test_the_table_has_a_row_per_run_and_a_column_per_key_and_metric(on_two_workers, tmp_path):
    out, _, _ = on_two_workers
    table = read_table(out)
    assert (table.columns, table.missing) == (COLUMNS, 0)
    assert [(r["members.count"], r["defaults.latency"], r["seed"]) for r in table.rows] == RUNS
    assert all(r["ok"] and r["delivered_ratio"] == 1.0 for r in table.rows)
    assert all(
        0 < r["convergence.p50"] < 1 and r["control_bytes_per_member"] > 0 for r in table.rows
    )
    written = tmp_path / "table.csv"
    assert main(["campaign", "table", str(out), "-o", str(written)]) == 0
    with open(written) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    assert [(int(r["members.count"]), r["defaults.latency"], int(r["seed"])) for r in rows] == RUNS
    assert [float(r["convergence.p50"]) for r in rows] == [r["convergence.p50"] for r in table.rows]


def test_the_table_is_a_dataframe_with_pandas_rows_without_and_parquet_with_pyarrow(
    on_two_workers, tmp_path, monkeypatch
):
    import pyarrow.parquet

    out, _, _ = on_two_workers
    rows = read_table(out).rows
    frame = campaign_table(out)
    assert list(frame.columns) == COLUMNS
    assert frame.to_dict("records") == rows
    parquet = tmp_path / "table.parquet"
    assert main(["campaign", "table", str(out), "-o", str(parquet)]) == 0
    assert pyarrow.parquet.read_table(parquet).to_pylist() == rows
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    assert campaign_table(out) == rows


def test_dask_changes_where_runs_happen_not_what_they_compute(on_two_workers, tmp_path, capsys):
    out, _, _ = on_two_workers
    one = tmp_path / "one-worker"
    assert main(["campaign", "run", str(GRID), "--out", str(one), "--workers", "1"]) == 0
    shown = capsys.readouterr()
    assert "27 run now on a local Dask cluster of 1 worker," in shown.out
    assert "dashboard: http://127.0.0.1:" in shown.err
    assert "small-grid: 27/27 runs, 0 failed" in shown.err  # progress, as lines off a terminal
    serial = tmp_path / "serial"
    # in a process of its own, to show that no part of Dask is even imported
    code = (
        "import sys\n"
        "from peerlab.campaign import run_campaign\n"
        f"report = run_campaign({str(GRID)!r}, {str(serial)!r}, serial=True)\n"
        "assert report.ran == 27 and report.where == 'in this process', report\n"
        "assert not [m for m in sys.modules if m.startswith(('dask', 'distributed'))]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    tables = [read_table(folder).rows for folder in (out, one, serial)]
    assert without_wall_time(tables[0]) == without_wall_time(tables[1])
    assert without_wall_time(tables[0]) == without_wall_time(tables[2])


def test_the_plot_draws_a_line_per_hue_value_with_95_percent_intervals(on_two_workers, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    out, _, _ = on_two_workers
    metric = "control_bytes_per_member"
    drawn = draw_campaign(out, "members.count", "control.bytes_per_member", "defaults.latency")
    ax = drawn["ax"]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 3
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"defaults.latency={v}" for v in ("2ms", "5ms", "10ms")]
    rows = read_table(out).rows
    widths = []
    for container, latency in zip(bars, ("2ms", "5ms", "10ms"), strict=True):
        line, _, (ranges,) = container.lines
        assert list(line.get_xdata()) == [6, 8, 10]
        for n, y, segment in zip((6, 8, 10), line.get_ydata(), ranges.get_segments(), strict=True):
            values = [
                r[metric]
                for r in rows
                if (r["members.count"], r["defaults.latency"]) == (n, latency)
            ]
            half = 4.303 * statistics.stdev(values) / math.sqrt(3)  # Student's t, 2 degrees
            assert y == pytest.approx(statistics.mean(values))
            assert [p[1] for p in segment] == pytest.approx([y - half, y + half], abs=1e-3)
            widths.append(half)
    assert max(widths) > 0  # the seeds' topologies differ, and so do their costs
    plt.close(ax.figure)
    picture = tmp_path / "p50.png"
    command = ["campaign", "plot", str(out), "--x", "members.count", "--y", "convergence.p50"]
    assert main([*command, "--hue", "defaults.latency", "-o", str(picture)]) == 0
    assert picture.stat().st_size > 0


def test_the_scheduler_may_come_from_the_environment(cluster, tmp_path, monkeypatch):
    path = tmp_path / "one.yaml"
    path.write_text(f"scenario: {HERE / 'small.yaml'}\nseeds: [4]\n")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    report = run_campaign(path, tmp_path / "out")
    assert report.where == f"on the Dask scheduler at {cluster.scheduler_address} (2 workers)"
    assert (report.ran, report.failed) == (1, [])


def test_reading_a_folder_that_is_no_campaign_or_plotting_no_column_exits_2(
    on_two_workers, tmp_path, capsys
):
    out, _, _ = on_two_workers
    assert main(["campaign", "table", str(tmp_path)]) == 2
    assert "is not a campaign folder (it has no campaign.json" in capsys.readouterr().err
    command = [
        "campaign",
        "plot",
        str(out),
        "--y",
        "convergence.p50",
        "-o",
        str(tmp_path / "p.png"),
    ]
    assert main([*command, "--x", "members"]) == 2
    assert "x: no column 'members' (columns: members.count, defaults.latency, seed," in (
        capsys.readouterr().err
    )
    assert main([*command, "--x", "seed", "--y", "p50"]) == 2
    assert "unknown metric 'p50'" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_the_issue_example_campaign_works_as_written(tmp_path):
    out, written, picture = tmp_path / "c", tmp_path / "table.csv", tmp_path / "plot.png"
    assert main(["campaign", "run", str(EXAMPLE), "--out", str(out), "--serial", "--quiet"]) == 0
    assert main(["campaign", "table", str(out), "-o", str(written)]) == 0
    with open(written) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "members.count",
        "topology.generator.degree",
        "seed",
        "delivered_ratio",
        "convergence_p50",
        "control_bytes_per_member",
        "ok",
    ]
    assert [(r["members.count"], r["topology.generator.degree"], r["seed"]) for r in rows] == [
        (n, d, s) for n in ("20", "40") for d in ("3", "4") for s in ("1", "2", "3")
    ]
    command = ["campaign", "plot", str(out), "--x", "members.count", "--y", "convergence.p50"]
    assert main([*command, "--hue", "topology.generator.degree", "-o", str(picture)]) == 0
    assert picture.stat().st_size > 0


def test_killing_a_worker_mid_campaign_loses_no_run(tmp_path):
    from distributed import Client

    # the grid campaign with runs long enough (15 s of simulated time) to be caught running
    small = (HERE / "small.yaml").read_text().replace("settle: 0.5s", "settle: 15s")
    (tmp_path / "small.yaml").write_text(small)
    (tmp_path / "grid.yaml").write_text(GRID.read_text())
    killed = {}
    with local_cluster(2) as cluster, Client(cluster) as client:

        def kill_a_busy_worker(record):
            if killed:
                return
            busy = sorted((w, keys) for w, keys in client.processing().items() if keys)
            worker, keys = busy[0]
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, keys=keys)

        report = run_campaign(
            tmp_path / "grid.yaml",
            tmp_path / "out",
            scheduler=cluster.scheduler_address,
            on_record=kill_a_busy_worker,
        )
    assert killed
    deadline = time.monotonic() + 30
    while psutil.pid_exists(killed["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(killed["pid"])
    assert (report.ran, report.failed) == (27, [])
    rows = read_table(tmp_path / "out").rows
    assert [(r["members.count"], r["defaults.latency"], r["seed"]) for r in rows] == RUNS
    runs = tmp_path / "out" / "runs"
    for key in killed["keys"]:  # what the killed worker was running was done elsewhere
        assert (runs / f"{key.removeprefix('peerlab-run-')}.json").exists()


def write_campaign(folder: Path, text: str) -> Path:
    path = folder / "bad.yaml"
    path.write_text(f"scenario: {HERE / 'small.yaml'}\n{text}")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # an unknown key path
            "grid:\n  members.count: [6, 8]\n  topology.generator.degre: [3]\nseeds: 1-3\n",
            "bad.yaml:4: grid point members.count=6, topology.generator.degre=3: "
            "topology.generator.degre: unknown key 'degre' (expected one of: kind, degree,",
        ),
        (  # a top-level key the scenario does not have: the mapping the grid made is blamed
            "grid:\n  member.count: [6]\nseeds: 1-3\n",
            "bad.yaml:3: grid point member.count=6: member.count: unknown key 'count'",
        ),
        (  # a value the scenario rejects
            "grid:\n  defaults.latency: [2ms, fast]\nseeds: 1-3\n",
            "bad.yaml:3: grid point defaults.latency=fast: defaults.latency: expected a duration",
        ),
        (  # a value the scenario rejects with the base's own setting, at the last point
            "grid:\n  members.count: [6, 8, 7]\nseeds: 1-3\n",
            "small.yaml:5: grid point members.count=7: topology.generator.degree: "
            "degree x members must be even, got 3 x 7",
        ),
        (  # a key path through a value that is not a mapping
            "grid:\n  members.count.x: [1]\nseeds: 1-3\n",
            "bad.yaml:3: grid point members.count.x=1: members.count.x: "
            "members.count is not a mapping, so it has no key 'x'",
        ),
        (  # an empty grid
            "grid: {}\nseeds: 1-3\n",
            "bad.yaml:2: grid: expected a mapping of key paths to lists of values, got {}",
        ),
        (  # a grid key with no values
            "grid:\n  members.count: []\nseeds: 1-3\n",
            "bad.yaml:3: grid.members.count: expected a non-empty list of values, got []",
        ),
        (
            "grid:\n  members count: [6]\nseeds: 1-3\n",
            "bad.yaml:3: grid.members count: 'members count' is not a key path",
        ),
        ("seeds: 30\n", "bad.yaml:2: seeds: expected seeds like 1-30 or a list, got 30"),
        ("seeds: 3-1\n", "bad.yaml:2: seeds: '3-1' is an empty range of seeds"),
        ("seeds: 1-3\nmetrics: [p50]\n", "bad.yaml:3: metrics[0]: unknown metric 'p50'"),
        ("seeds: 1-3\nbackend: ns3\n", "bad.yaml:3: backend: unknown backend 'ns3'"),
        ("seeds: 1-3\nruns: 4\n", "bad.yaml:3: runs: unknown key 'runs'"),
    ],
)
def test_a_bad_campaign_file_exits_2_with_one_line_before_anything_runs(
    tmp_path, capsys, text, message
):
    out = tmp_path / "out"
    assert main(["campaign", "run", str(write_campaign(tmp_path, text)), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("peerlab: error: ")
    assert message in lines[0]
    assert not out.exists()


def test_every_problem_of_a_grid_point_is_named_where_it_comes_from(tmp_path, capsys):
    text = "grid:\n  members.count: [7]\n  defaults.latency: [fast]\nseeds: 1-3\n"
    path = write_campaign(tmp_path, text)
    point = "grid point members.count=7, defaults.latency=fast"
    assert main(["campaign", "run", str(path), "--serial"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"peerlab: error: {path}:4: {point}: defaults.latency: expected a duration like 5ms, "
        "2s or 0.5, got 'fast'",
        f"{HERE / 'small.yaml'}:5: {point}: topology.generator.degree: degree x members must "
        "be even, got 3 x 7",
    ]


def test_a_missing_base_scenario_is_named_at_the_campaign_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("campaign: x\nscenario: nowhere.yaml\nseeds: 1-2\n")
    assert main(["campaign", "run", str(path), "--serial"]) == 2
    assert "c.yaml:2: scenario: no scenario file" in capsys.readouterr().err


def test_rerun_failed_runs_again_only_the_runs_not_ok(tmp_path, monkeypatch, capsys):
    path = write_campaign(tmp_path, "grid:\n  expect.converged_within: [1us, 5s]\nseeds: 1-2\n")
    out = tmp_path / "out"
    assert main(["campaign", "run", str(path), "--out", str(out), "--serial", "--quiet"]) == 1
    shown = capsys.readouterr().out
    assert "2 ok, 2 not ok" in shown
    assert "expect.converged_within=1us, seed 1: expectations failed: converged_within" in shown
    first = read_table(out).rows
    assert [r["ok"] for r in first] == [False, False, True, True]

    import peerlab.runner

    def broken(*args, **kwargs):
        raise RuntimeError("the run broke")

    monkeypatch.setattr(peerlab.runner, "run", broken)  # every run that runs now fails
    seen = []
    report = run_campaign(path, out, serial=True, rerun_failed=True, on_record=seen.append)
    assert [(r["point"]["expect.converged_within"], r["seed"]) for r in seen] == [
        ("1us", 1),
        ("1us", 2),
    ]
    assert [r["error"] for r in report.failed] == ["RuntimeError: the run broke"] * 2
    assert read_table(out).rows[2:] == first[2:]  # the runs that were ok were kept


def test_a_run_is_keyed_by_its_scenario_seed_backend_and_version(tmp_path, monkeypatch):
    keys = [run.key for run in load_campaign(GRID).runs]
    assert len(set(keys)) == 27
    # the same campaign elsewhere, its base scenario reformatted: the same runs
    (tmp_path / "small.yaml").write_text("# moved\n\n" + (HERE / "small.yaml").read_text())
    (tmp_path / "grid.yaml").write_text(GRID.read_text())
    assert [run.key for run in load_campaign(tmp_path / "grid.yaml").runs] == keys
    other = (tmp_path / "grid.yaml").read_text() + "backend: real\n"
    (tmp_path / "grid.yaml").write_text(other)
    assert not set(run.key for run in load_campaign(tmp_path / "grid.yaml").runs) & set(keys)
    monkeypatch.setattr(peerlab, "__version__", "0.0.0+other")
    assert not set(run.key for run in load_campaign(GRID).runs) & set(keys)


def test_the_seed_drives_the_generated_topology_too():
    runs = load_campaign(GRID).runs
    graphs = {frozenset(link.pair for link in run.scenario.links) for run in runs[18:21]}
    assert len(graphs) == 3  # members.count=10, defaults.latency=2ms: a graph for each seed
    assert [run.scenario.seed for run in runs[:3]] == [1, 2, 3]


def test_progress_off_a_terminal_is_a_line_per_tenth_and_on_one_a_bar():
    from rich.console import Console

    text = io.StringIO()
    console = Console(file=text, width=100)
    with Progress("grid", 20, unit=" runs", console=console, every=0) as shown:
        shown.note("dashboard: http://127.0.0.1:1/status")
        for i in range(20):
            shown.advance(note=f"{int(i >= 3)} failed")
    lines = text.getvalue().splitlines()
    assert lines[0] == "dashboard: http://127.0.0.1:1/status"
    assert [line.split(",")[0] for line in lines[1:]] == [
        f"grid: {2 * i}/20 runs" for i in range(1, 11)
    ]
    assert lines[-1].startswith("grid: 20/20 runs, 1 failed, 0:00:00 elapsed, ETA -")
    bar = io.StringIO()
    terminal = Console(file=bar, width=100, force_terminal=True)
    with Progress("grid", 2, unit=" runs", console=terminal) as shown:
        shown.advance()
        shown.advance()
    assert "2/2 runs" in bar.getvalue() and "ETA" in bar.getvalue()
    quiet = io.StringIO()
    with Progress("grid", 2, enabled=False, console=Console(file=quiet)) as shown:
        shown.note("hidden")
        shown.advance()
    assert quiet.getvalue() == ""
