"""The ``peerlab campaign run|table|plot`` and ``peerlab sweep`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peerlab.campaign.execute import CampaignReport, run_campaign
from peerlab.campaign.metrics import canonical
from peerlab.campaign.spec import load_campaign, parse_seeds, sweep_campaign
from peerlab.campaign.store import MANIFEST
from peerlab.campaign.table import read_table, write_csv, write_table
from peerlab.cli import STDOUT, _file_or_stdout, _folder, _positive, _save, _writable
from peerlab.console import log
from peerlab.errors import PeerlabError

#: how many failed runs a report lists
SHOWN_FAILURES = 10


def add_campaign_commands(
    sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """Add ``campaign`` (with ``run``, ``table``, ``plot``) and ``sweep`` to ``sub``, each
    taking the flags of ``parents`` too."""
    p = sub.add_parser(
        "campaign",
        parents=parents,
        help="a grid of parameters x seeds: run (on Dask), table, plot",
    )
    commands = p.add_subparsers(dest="campaign_command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "run", parents=parents, help="run what the campaign folder does not hold yet"
    )
    p.add_argument("file", help="campaign YAML file (see scenarios/README.md)")
    p.add_argument("--out", help="campaign folder (default out/campaign-NAME)")
    p.add_argument("--rerun-failed", action="store_true", help="run again the runs not ok")
    _where_flags(p)
    p.set_defaults(func=_cmd_run)

    p = commands.add_parser(
        "table", parents=parents, help="write the campaign's table: a row per run"
    )
    p.add_argument("folder", help="campaign folder")
    p.add_argument(
        "-o",
        "--output",
        help="CSV (- for standard output), or .parquet with pyarrow (default FOLDER/table.csv)",
    )
    p.add_argument("--metrics", nargs="+", help="these metrics instead of the campaign's")
    p.set_defaults(func=_cmd_table)

    p = commands.add_parser(
        "plot", parents=parents, help="a metric's mean and 95%% CI over seeds against a key"
    )
    p.add_argument("folder", help="campaign folder")
    p.add_argument("--x", required=True, help="grid key along the x axis")
    p.add_argument("--y", required=True, help="metric (e.g. convergence.p50)")
    p.add_argument("--hue", help="grid key: one line per value")
    p.add_argument(
        "-o", "--output", help="PNG file (default FOLDER/Y-vs-X.png; - for standard output)"
    )
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "sweep", parents=parents, help="scenario files x seeds in simulation: a campaign of seeds"
    )
    p.add_argument("scenarios", nargs="+", help="scenario YAML files")
    p.add_argument("--seeds", default="1-5", help="e.g. 1-10 or 3,5,8 (default 1-5)")
    p.add_argument("--out", default="out/sweep", help="campaign folder (default out/sweep)")
    _where_flags(p)
    p.set_defaults(func=_cmd_sweep)


def _where_flags(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="worker processes of the local Dask cluster (default: one per CPU)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask cluster's scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else a local cluster)",
    )
    where.add_argument(
        "--serial", action="store_true", help="run in this process, one by one, without Dask"
    )


def _campaign_folder(out: str) -> str:
    """``out``, once it is known that a campaign folder can be written there."""
    _writable(Path(_folder(out, "--out")) / MANIFEST, "--out")
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.file)
    report = run_campaign(
        campaign,
        _campaign_folder(args.out or f"out/campaign-{campaign.name}"),
        workers=args.workers,
        scheduler=args.scheduler,
        serial=args.serial,
        rerun_failed=args.rerun_failed,
        progress=args.verbosity >= 0,
    )
    print(format_report(report))
    return 0 if report.ok else 1


def format_report(report: CampaignReport) -> str:
    """What a campaign run did, the runs that are not ok, and where its results are."""
    c = report.campaign
    done = (
        f"{report.ran} run now {report.where}, {report.skipped} done before"
        if report.ran
        else "all done before, nothing to run"
    )
    lines = [
        f"campaign {c.name}: {report.total} runs ({len(c.points)} grid points x "
        f"{len(c.seeds)} seeds): {done}",
        f"  {report.total - len(report.failed)} ok, {len(report.failed)} not ok",
    ]
    for record in report.failed[:SHOWN_FAILURES]:
        point = ", ".join(f"{k}={v}" for k, v in record["point"].items())
        why = record["error"] or "expectations failed: " + ", ".join(record["failed"])
        lines.append(f"    {point}{', ' if point else ''}seed {record['seed']}: {why}")
    if len(report.failed) > SHOWN_FAILURES:
        lines.append(f"    ... and {len(report.failed) - SHOWN_FAILURES} more")
    lines.append(
        f"results in {report.folder} (peerlab campaign table {report.folder} -o table.csv)"
    )
    return "\n".join(lines)


def _cmd_table(args: argparse.Namespace) -> int:
    table = read_table(args.folder, args.metrics)
    output = args.output or str(Path(args.folder) / "table.csv")
    if output == STDOUT:
        write_csv(table, sys.stdout)
    else:
        write_table(table, _writable(output, "-o"))
        print(f"{len(table.rows)} rows written to {output}")
    if table.missing:
        log.warning("%d runs are not done yet: peerlab campaign run finishes them", table.missing)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from peerlab.campaign.figure import draw_campaign

    output = args.output or str(Path(args.folder) / f"{canonical(args.y)}-vs-{args.x}.png")
    _file_or_stdout(output, "-o")
    drawn = draw_campaign(args.folder, args.x, args.y, args.hue)
    figure = drawn["ax"].figure
    figure.tight_layout()
    _save(figure, output, "png", dpi=100)
    if output != STDOUT:
        print(f"{args.y} against {args.x} ({len(drawn['series'])} lines) written to {output}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from peerlab.sweep import SWEEP_METRICS, format_sweep

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise PeerlabError(f"--seeds: {exc}") from None
    campaign = sweep_campaign(args.scenarios, seeds, SWEEP_METRICS)
    run_campaign(
        campaign,
        _campaign_folder(args.out),
        workers=args.workers,
        scheduler=args.scheduler,
        serial=args.serial,
        progress=args.verbosity >= 0,
    )
    rows = read_table(args.out).rows
    print(format_sweep(rows))
    print(f"results in {args.out} (peerlab campaign table {args.out} -o table.csv)")
    return 0 if all(r["ok"] for r in rows) else 1
