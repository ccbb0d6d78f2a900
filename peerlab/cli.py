"""The ``peerlab`` command line: run, check and compare scenarios; run a live member."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from peerlab.errors import PeerlabError, UnknownMember

if TYPE_CHECKING:
    from peerlab.results import RunResult

#: The scenario ``peerlab demo`` runs: one packaged with peerlab, so an installed wheel has it.
DEFAULT_SCENARIO = "quickstart"
IMAGE_FORMATS = ("png", "svg", "pdf")
#: plot kinds that can show one instant of a run (``--at``)
TIMED_KINDS = ("topology", "route", "view", "table", "tables")


def _summary(result) -> str:
    lines = [
        f"scenario {result.scenario} on {result.backend} (seed {result.seed}): "
        f"{result.duration:g}s of scenario time in {result.wall_time:.2f}s"
    ]
    msgs = result.messages
    delivered = result.delivered
    lines.append(f"  messages: {len(delivered)}/{len(msgs)} delivered")
    drops = Counter(m["drop_reason"] for m in msgs if m["delivered_at"] is None)
    for reason, n in sorted(drops.items()):
        lines.append(f"    dropped ({reason}): {n}")
    hops = Counter(len(m["path"]) - 1 for m in delivered)
    if hops:
        lines.append("  hops: " + ", ".join(f"{h}:{n}" for h, n in sorted(hops.items())))
    if result.convergence:
        lines.append("  convergence:")
        for c in result.convergence:
            took = (
                c["status"].replace("_", " ")
                if c["converged_at"] is None
                else f"{(c['converged_at'] - c['at']) * 1000:.0f}ms"
            )
            lines.append(f"    {c['at']:>7.2f}s  {c['event']:<36} {took}")
    lines.append(f"  members at the end: {len(result.members)}, links: {len(result.final_links)}")
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    lines.append("  expectations:")
    for e in result.expectations:
        lines.append(f"    [{'pass' if e['ok'] else 'FAIL'}] {e['name']}: {e['detail']}")
    if not result.expectations:
        lines.append("    (none)")
    return "\n".join(lines)


def _progress(args):
    from peerlab.runner import text_progress

    return None if getattr(args, "quiet", False) else text_progress()


def _writable(path: str | Path, flag: str) -> Path:
    """``path``, its directory made if missing; a clear error naming ``flag`` if it cannot be
    written, found before any run is spent on it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PeerlabError(f"{flag}: cannot write {str(path)!r}: {exc.strerror}") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        why = "it is a directory" if path.is_dir() else "its directory is not writable"
        raise PeerlabError(f"{flag}: cannot write {str(path)!r}: {why}")
    return path


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from peerlab.runner import run
    from peerlab.scenario import load_scenario

    for flag, path in (("--out", args.out), ("--trace", args.trace)):
        if path:
            _writable(path, flag)
    scenario = load_scenario(args.scenario)
    result = run(
        scenario,
        args.backend,
        seed=args.seed,
        time_scale=args.time_scale,
        progress=_progress(args),
        member_class=_member_class(args),
    )
    print(_summary(result))
    if args.out:
        result.write(args.out)
        print(f"results written to {args.out}")
    if args.trace:
        result.write_trace(args.trace)
        print(f"trace written to {args.trace}")
    return 0 if result.ok else 1


def _cmd_check(args: argparse.Namespace) -> int:
    from peerlab.scenario import load_scenario

    for path in args.scenarios:
        s = load_scenario(path)
        print(
            f"{path}: ok ({len(s.members)} members, {len(s.links)} links, "
            f"{len(s.events)} events, {s.end_time:g}s)"
        )
        for warning in s.warnings:
            print(f"  warning: {warning}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    return _compare_and_report(args)[0]


def _compare_and_report(args: argparse.Namespace):
    """Run the comparison, print and write it; returns (exit code, the real run's result)."""
    from peerlab.compare import compare, format_comparison
    from peerlab.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    out = _writable(args.out or f"out/compare-{scenario.name}", "--out")
    comparison, sim, real = compare(scenario, time_scale=args.time_scale, progress=_progress(args))
    text = format_comparison(comparison)
    print(text)
    out.with_suffix(".json").write_text(json.dumps(comparison, indent=1, sort_keys=True) + "\n")
    out.with_suffix(".txt").write_text(text + "\n")
    sim.write(out.parent / f"{out.name}-sim.json")
    real.write(out.parent / f"{out.name}-real.json")
    print(f"\ncomparison written to {out.with_suffix('.json')} and {out.with_suffix('.txt')}")
    return (0 if comparison["agree"] else 1), real


def _member_class(args: argparse.Namespace):
    """The member class ``--member-class`` names (the standard one if none)."""
    from peerlab.member import Member, member_class

    return member_class(args.member_class) if args.member_class else Member


def _cmd_explore(args: argparse.Namespace) -> int:
    from rich.table import Table

    from peerlab.campaign.spec import parse_seeds
    from peerlab.console import progress, stderr
    from peerlab.explorer import CHECKED, explore
    from peerlab.units import parse_duration

    seeds = parse_seeds(args.seeds)
    try:
        budget = parse_duration(args.budget) if args.budget else None
    except ValueError as exc:
        raise PeerlabError(f"--budget: {exc}") from None
    faults = [k.strip() for k in args.faults.split(",")] if args.faults else None
    extra = {"faults": faults} if faults else {}
    with progress("exploring", len(seeds), quiet=args.quiet) as update:
        report = explore(
            args.source,
            seeds=seeds,
            events=args.events,
            budget=budget,
            out=args.out,
            member_class=_member_class(args),
            bound=args.bound,
            max_failures=args.max_failures,
            progress=lambda done, total, failed: update(done, f"{failed} failing"),
            **extra,
        )
    failed = {f.invariant for f in report.failures}
    table = Table(title=f"peerlab explore {args.source}", title_justify="left")
    table.add_column("invariant")
    table.add_column("seeds checked", justify="right")
    table.add_column("seeds failing", justify="right")
    for name in CHECKED:
        failing = sum(1 for f in report.failures if f.invariant == name)
        table.add_row(name, str(report.checked[name]), str(failing) if name in failed else "0")
    console = _stdout()
    console.print(table)
    console.print(
        f"seeds run: {len(report.seeds)} of {len(seeds)} in {report.wall_time:.1f}s"
        + (f" ({report.skipped} not run: budget or --max-failures)" if report.skipped else "")
    )
    if report.ok:
        console.print("no failures")
        return 0
    for f in report.failures:
        members, events = f.shrunk
        console.print(
            f"seed {f.seed}: {f.invariant}: {f.violations[0].detail}\n"
            f"  shrunk from {f.original[0]} members and {f.original[1]} events to {members} and "
            f"{events}: {f.path}\n  reproduce: peerlab run {f.path}"
            + (f" --member-class {args.member_class}" if args.member_class else ""),
            highlight=False,
            soft_wrap=True,
        )
    stderr().print(f"{len(report.failures)} seed(s) failed", style="bold red")
    return 1


def _stdout():
    """A rich console on standard output."""
    from rich.console import Console

    return Console(highlight=False)


def _cmd_member(args: argparse.Namespace) -> int:
    from peerlab.realnet.peer import run_peer
    from peerlab.realnet.transport import parse_address
    from peerlab.wire import member_id_problem

    def parsed(flag: str, address: str) -> tuple[str, int]:
        try:
            return parse_address(address)
        except ValueError as exc:
            raise PeerlabError(f"{flag}: {exc}") from None

    problem = member_id_problem(args.id)
    if problem is not None:
        raise PeerlabError(f"--id: {problem}")
    listen = parsed("--listen", args.listen)
    for address in args.join:
        if parsed("--join", address) == listen:
            raise PeerlabError(f"--join: {address} is this member's own --listen address")
    if args.script:
        with open(args.script) as commands:
            return run_peer(args.id, args.listen, args.join, commands, False, args.run_for)
    interactive = sys.stdin.isatty()
    return run_peer(args.id, args.listen, args.join, sys.stdin, interactive, args.run_for)


def _load_result(path: str, args: argparse.Namespace):
    """A RunResult from a results JSON file, or by running a scenario file in sim."""
    from peerlab.results import RunResult
    from peerlab.runner import run

    if path.endswith(".json"):
        return RunResult.read(path)
    return run(path, "sim", progress=_progress(args))


def _live_member(result: RunResult, flag: str, name: str | None) -> str:
    """``name`` if it is a member alive at the end of the run, else a clear error naming
    ``flag``."""
    try:
        return result.member(name or "")
    except UnknownMember as exc:
        raise PeerlabError(f"{flag}: {exc}") from None


def _image_format(output: str, wanted: str | None) -> str:
    """The format to save ``output`` in: ``--format``, else the file's suffix, else png; a
    clear error when the two disagree."""
    suffix = Path(output).suffix.lower().lstrip(".")
    if wanted is None:
        return suffix if suffix in IMAGE_FORMATS else "png"
    if suffix in IMAGE_FORMATS and suffix != wanted:
        raise PeerlabError(f"--format {wanted} does not match -o {output!r} (a .{suffix} file)")
    return wanted


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from peerlab import plot

    fmt = _image_format(args.output, args.format)
    _writable(args.output, "-o")
    if args.animate:
        _writable(args.animate, "--animate")
    result = _load_result(args.input, args)
    kind, at = args.kind, args.at
    if at is not None and kind not in TIMED_KINDS:
        raise PeerlabError(f"--at: --kind {kind} draws the whole run, not one instant")
    if kind == "compare":
        if args.other:
            other = _load_result(args.other, args)
        elif not args.input.endswith(".json"):
            from peerlab.runner import run

            other = run(args.input, "real", progress=_progress(args))
        else:
            raise PeerlabError("--kind compare with a results file needs --other RESULTS.json")
        sim, real = (result, other) if result.backend == "sim" else (other, result)
        fig = plot.draw_comparison(sim, real)["fig"]
    else:
        timed = {} if at is None else {"at": at}

        def pick(flag: str, name: str | None) -> str:
            # at an instant, the timeline says whether the member was running then
            return name or "" if at is not None else _live_member(result, flag, name)

        member = args.member or (result.members[0] if result.members else None)
        try:
            if kind == "route":
                src = pick("--src", args.src or member)
                dst = pick("--dst", args.dst or (result.members[-1] if result.members else None))
                drawn = plot.draw_route(result, src, dst, **timed)
            elif kind == "table":
                who = pick("--member", member)
                try:
                    drawn = plot.draw_routing_table(result, who, page=args.page, **timed)
                except ValueError as exc:
                    raise PeerlabError(f"--page: {exc}") from None
            elif kind == "view":
                drawn = plot.draw_view(result, pick("--member", member), **timed)
            else:
                drawn = plot.KINDS[kind](result, **timed)
        except UnknownMember as exc:
            raise PeerlabError(f"--at {at:g}: {exc}") from None
        fig = drawn["ax"].figure
        if kind == "table" and drawn["pages"] > 1:
            print(f"the table has {drawn['pages']} pages; this is page {drawn['page']} (--page)")
    fig.savefig(args.output, dpi=args.dpi, format=fmt, bbox_inches="tight")
    plt.close(fig)
    print(f"{kind} plot written to {args.output}")
    if args.animate:
        info = plot.animate(result, args.animate, frames=args.frames)
        print(
            f"animation ({info['frames']} frames, {info['link_changes']} link changes) "
            f"written to {args.animate}"
        )
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from peerlab import viewer

    _writable(args.output, "-o")
    path = viewer.write(_load_result(args.input, args), args.output)
    print(f"viewer written to {path} ({path.stat().st_size // 1024} KiB; open it in a browser)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    args.scenario = DEFAULT_SCENARIO
    args.out = None
    code, real = _compare_and_report(args)
    import matplotlib

    matplotlib.use("Agg")
    from peerlab import plot

    picture = plot.overview(real, "out/quickstart.png")
    print(f"picture of the real run written to {picture}")
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``peerlab`` command."""
    from peerlab import __version__

    parser = argparse.ArgumentParser(
        prog="peerlab", description="Build, run, simulate and look at P2P overlay networks."
    )
    parser.add_argument("--version", action="version", version=f"peerlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario on one backend")
    p.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    p.add_argument(
        "--backend",
        choices=["sim", "real", "proc"],
        default="sim",
        help="sim: SimPy; real: loopback TCP in this process; proc: one process each",
    )
    p.add_argument("--out", help="write results JSON here")
    p.add_argument("--trace", help="write the event trace (JSON lines) here")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real backend: stretch (>1) or squeeze (<1) the timeline",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--member-class",
        metavar="MODULE:CLASS",
        help="run this Member subclass (a protocol variant) in place of the standard member",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "explore",
        help="random fault schedules in simulation, invariants checked, failures shrunk",
        description="Deterministic simulation testing: for each seed, a random schedule of "
        "faults and traffic runs in the simulator (twice, to check the trace repeats); every "
        "invariant is checked after a final heal and a quiet period; a failing schedule is "
        "shrunk and written as a scenario that `peerlab run` reproduces.",
    )
    p.add_argument("source", metavar="SCENARIO_OR_TOPOLOGY", help="the network to explore")
    p.add_argument("--seeds", default="1-50", help="e.g. 1-500 or 3,5,8 (default 1-50)")
    p.add_argument(
        "--faults",
        metavar="KINDS",
        help="comma-separated fault kinds (default: all of link_down, link_cut, partition, "
        "partition_one_way, crash, power_off, pause, restart, leave, join)",
    )
    p.add_argument("--events", type=_positive, default=20, help="faults per schedule (20)")
    p.add_argument("--budget", metavar="DURATION", help="start no new seed after this (e.g. 10m)")
    p.add_argument(
        "--bound", type=float, default=5.0, help="convergence bound after the final heal (5s)"
    )
    p.add_argument(
        "--max-failures", type=_positive, default=1, help="stop after this many failing seeds (1)"
    )
    p.add_argument("--out", default="out/explore", help="where failing scenarios are written")
    p.add_argument("--member-class", metavar="MODULE:CLASS", help="a protocol variant to explore")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("check", help="validate scenarios without running them")
    p.add_argument("scenarios", nargs="+", help="scenario YAML files")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("compare", help="run a scenario on both backends, side by side")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="output path stem (default out/compare-NAME)")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="real run: stretch (>1) or squeeze (<1)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)

    # imported here: the campaign commands' module builds on this one's helpers
    from peerlab.campaign.cli import add_campaign_commands

    add_campaign_commands(sub)

    p = sub.add_parser("member", help="run one live member with a command prompt")
    p.add_argument("--id", required=True, help="this member's id")
    p.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    p.add_argument("--join", nargs="*", default=[], metavar="HOST:PORT")
    p.add_argument("--script", help="read commands from this file instead of stdin")
    p.add_argument("--run-for", type=float, help="after the last command, keep running this long")
    p.set_defaults(func=_cmd_member)

    p = sub.add_parser("plot", help="draw a scenario (run in sim first) or a results file")
    p.add_argument("input", metavar="SCENARIO_OR_RESULTS")
    p.add_argument("-o", "--output", required=True, help="image file to write (.png, .svg, ...)")
    p.add_argument(
        "--kind",
        default="topology",
        choices=[
            "topology",
            "route",
            "view",
            "timeline",
            "latency",
            "hops",
            "adjacency",
            "table",
            "tables",
            "compare",
        ],
        help="what to draw (default: topology)",
    )
    p.add_argument("--member", help="for view and table: whose")
    p.add_argument(
        "--at",
        type=float,
        metavar="SECONDS",
        help="for topology, route, view, table and tables: that instant of the run",
    )
    p.add_argument("--page", type=_positive, default=1, help="for table: which page")
    p.add_argument("--dpi", type=_positive, default=150, help="resolution (default 150)")
    p.add_argument(
        "--format", choices=IMAGE_FORMATS, help="image format (default: from -o's suffix, or png)"
    )
    p.add_argument("--src", help="for route: from whom")
    p.add_argument("--dst", help="for route: to whom")
    p.add_argument("--other", help="for compare: the other backend's results JSON")
    p.add_argument("--animate", metavar="OUT.gif", help="also write an animation of the run")
    p.add_argument("--frames", type=_positive, default=40, help="frames of the animation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("view", help="write a run's interactive viewer: one offline HTML file")
    p.add_argument(
        "input", metavar="RESULTS_OR_SCENARIO", help="results JSON, or a scenario to run"
    )
    p.add_argument("-o", "--output", required=True, help="HTML file to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("demo", help="compare sim and real on the built-in quickstart scenario")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="real run: stretch (>1) or squeeze (<1)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``peerlab`` console script; bad input exits 2 with one clear line."""
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader went away (``peerlab run ... | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except PeerlabError as exc:
        print(f"peerlab: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"peerlab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
