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


def _cmd_run(args: argparse.Namespace) -> int:
    from peerlab.runner import run
    from peerlab.scenario import load_scenario

    for flag, path in (("--out", args.out), ("--trace", args.trace)):
        if path:
            _writable(path, flag)
    scenario = load_scenario(args.scenario)
    result = run(
        scenario, args.backend, seed=args.seed, time_scale=args.time_scale, progress=_progress(args)
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


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from peerlab import plot

    _writable(args.output, "-o")
    if args.animate:
        _writable(args.animate, "--animate")
    result = _load_result(args.input, args)
    kind = args.kind
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
        fig, ax = plt.subplots(figsize=(9, 4) if kind == "timeline" else (6, 5))
        member = args.member or (result.members[0] if result.members else None)
        if kind == "route":
            src = _live_member(result, "--src", args.src or member)
            dst = _live_member(
                result, "--dst", args.dst or (result.members[-1] if result.members else None)
            )
            plot.draw_route(result, src, dst, ax=ax)
        elif kind in ("view", "table"):
            plot.KINDS[kind](result, _live_member(result, "--member", member), ax=ax)
        else:
            plot.KINDS[kind](result, ax=ax)
        fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"{kind} plot written to {args.output}")
    if args.animate:
        info = plot.animate(result, args.animate)
        print(f"animation ({info['frames']} frames) written to {args.animate}")
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
    parser = argparse.ArgumentParser(
        prog="peerlab", description="Build, run, simulate and look at P2P overlay networks."
    )
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
    p.set_defaults(func=_cmd_run)

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
            "compare",
        ],
        help="what to draw (default: topology)",
    )
    p.add_argument("--member", help="for view and table: whose")
    p.add_argument("--src", help="for route: from whom")
    p.add_argument("--dst", help="for route: to whom")
    p.add_argument("--other", help="for compare: the other backend's results JSON")
    p.add_argument("--animate", metavar="OUT.gif", help="also write an animation of the run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_plot)

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
