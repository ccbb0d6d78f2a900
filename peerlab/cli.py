"""The ``peerlab`` command line: run, check and compare scenarios; run a live member.

Every command takes ``-v`` (debug detail) and ``-q`` (errors only: no progress, no warnings),
before or after its name; an output flag given ``-`` writes to standard output (the report
then goes to standard error); bad input of any kind exits 2 with one line; SIGINT and SIGTERM
end a command cleanly, with exit status 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from peerlab.console import Progress, log, render, setup_logging, table
from peerlab.errors import PeerlabError, UnknownMember
from peerlab.network import BACKENDS

if TYPE_CHECKING:
    from peerlab.results import RunResult
    from peerlab.scenario import Scenario

#: The scenario ``peerlab demo`` runs: one packaged with peerlab, so an installed wheel has it.
DEFAULT_SCENARIO = "quickstart"
IMAGE_FORMATS = ("png", "svg", "pdf")
#: plot kinds that can show one instant of a run (``--at``)
TIMED_KINDS = ("topology", "route", "view", "table", "tables")
#: An output path that means standard output.
STDOUT = "-"
#: The flags of output files that can be standard output.
OUTPUT_FLAGS = {"out": "--out", "trace": "--trace", "output": "-o"}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose every mistake is one line on stderr, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Say what is wrong in one line and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _summary(result: RunResult) -> str:
    """What a run did: deliveries, convergence after each topology event, expectations."""
    msgs = result.messages
    delivered = result.delivered
    facts = table("", "", header=False)
    facts.add_row("messages delivered", f"{len(delivered)}/{len(msgs)}")
    drops = Counter(m["drop_reason"] for m in msgs if m["delivered_at"] is None)
    for reason, n in sorted(drops.items()):
        facts.add_row(f"dropped ({reason})", str(n))
    hops = Counter(len(m["path"]) - 1 for m in delivered)
    if hops:
        by_hops = ", ".join(f"{h}: {n}" for h, n in sorted(hops.items()))
        facts.add_row("messages by hops", by_hops)
    facts.add_row("members at the end", str(len(result.members)))
    facts.add_row("links at the end", str(len(result.final_links)))
    parts: list = [
        f"scenario {result.scenario} on {result.backend} (seed {result.seed}): "
        f"{result.duration:g}s of scenario time in {result.wall_time:.2f}s",
        facts,
    ]
    if result.convergence:
        converged = table(">at", "topology event", ">converged after")
        for c in result.convergence:
            took = (
                c["status"].replace("_", " ")
                if c["converged_at"] is None
                else f"{(c['converged_at'] - c['at']) * 1000:.0f}ms"
            )
            converged.add_row(f"{c['at']:.2f}s", c["event"], took)
        parts.append(converged)
    expected = table("expectation", "holds", "detail")
    for e in result.expectations:
        expected.add_row(e["name"], "yes" if e["ok"] else "FAIL", e["detail"])
    parts.append(expected if result.expectations else "no expectations")
    return render(*parts)


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


def _file_or_stdout(path: str | None, flag: str) -> None:
    """Check, before anything runs, that output ``path`` can be written (``-`` can)."""
    if path is not None and path != STDOUT:
        _writable(path, flag)


def _folder(path: str, flag: str) -> str:
    """``path``, which names a folder: standard output cannot be one."""
    if path == STDOUT:
        raise PeerlabError(f"{flag}: names a folder; standard output (-) cannot be one")
    return path


def _write(path: str, text: str) -> None:
    """Write ``text`` to file ``path``, or to standard output if ``path`` is ``-``."""
    if path == STDOUT:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def _say(args: argparse.Namespace, text: str) -> None:
    """Print a line of the command's report: on standard output, or on standard error when an
    output flag sends data there."""
    print(text, file=sys.stderr if args.to_stdout else sys.stdout)


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _scale(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _run(args: argparse.Namespace, scenario: Scenario, backend: str, **options) -> RunResult:
    """Run ``scenario`` on ``backend`` with a progress bar and a debug line for each event
    applied; the run's warnings are logged."""
    from peerlab.runner import run

    label = f"{scenario.name} on {backend}"
    with Progress(label, scenario.end_time, unit="s", enabled=args.verbosity >= 0) as bar:

        def told(now: float, end: float, applied: str | None) -> None:
            if applied is not None:
                log.debug("%s: %.3fs: %s", label, now, applied)
            bar.update(now)

        result = run(scenario, backend, progress=told, **options)
    for warning in result.warnings:
        log.warning("%s: %s", label, warning)
    return result


def _cmd_run(args: argparse.Namespace) -> int:
    from peerlab.scenario import load_scenario

    _file_or_stdout(args.out, "--out")
    _file_or_stdout(args.trace, "--trace")
    scenario = load_scenario(args.scenario)
    if args.record is not None and args.backend == "sim":
        raise PeerlabError("--record: a recording is of a real or proc run (to replay in sim)")
    with contextlib.ExitStack() as stack:
        result = _run(
            args,
            scenario,
            args.backend,
            seed=args.seed,
            time_scale=args.time_scale,
            member_class=_member_class(args),
            placement=_placement(args, stack),
            members_per_process=_members_per_process(args),
        )
    _say(args, _summary(result))
    if args.out:
        _write(args.out, result.to_json() + "\n")
        if args.out != STDOUT:
            _say(args, f"results written to {args.out}")
    if args.trace:
        result.write_trace(sys.stdout if args.trace == STDOUT else args.trace)
        if args.trace != STDOUT:
            _say(args, f"trace written to {args.trace}")
    if args.record:
        from peerlab.replay import record

        record(result, scenario, args.record)
        _say(args, f"recording written to {args.record} (peerlab replay {args.record})")
    return 0 if result.ok else 1


def _cmd_replay(args: argparse.Namespace) -> int:
    from peerlab.replay import replay

    _file_or_stdout(args.out, "--out")
    found, real, _ = replay(args.recording)
    rows = table("", ">", header=False)
    rows.add_row("messages delivered in both", str(found["delivered_in_both"]))
    rows.add_row("delivered in the real run only", ", ".join(found["delivered_only_real"]) or "-")
    rows.add_row("delivered in the replay only", ", ".join(found["delivered_only_sim"]) or "-")
    rows.add_row("on another path", ", ".join(found["different_paths"]) or "-")
    error = found["latency_error"]
    if error["median"] is not None:
        rows.add_row(
            "latency error |real-sim|/sim", f"median {error['median']:.1%}, max {error['max']:.1%}"
        )
    _say(args, f"{real.scenario} on {real.backend}, replayed in sim\n" + render(rows))
    if args.out:
        _write(args.out, json.dumps(found, indent=1) + "\n")
    return 0 if found["same_delivered"] and not found["different_paths"] else 1


def _placement(args: argparse.Namespace, stack: contextlib.ExitStack):
    """Where a proc run's member processes go: Dask workers with --scheduler or --workers (the
    cluster closed with ``stack``), else None (this machine)."""
    if args.scheduler is None and args.workers is None:
        return None
    if args.backend != "proc":
        raise PeerlabError("--scheduler/--workers: members are placed on Dask for --backend proc")
    from peerlab.campaign.execute import dask_client
    from peerlab.realnet.placement import DaskPlacement

    client = stack.enter_context(dask_client(args.workers, args.scheduler))
    log.info("members on Dask: %s (dashboard %s)", client.scheduler.address, client.dashboard_link)
    return DaskPlacement(client)


def _members_per_process(args: argparse.Namespace) -> int | None:
    """--members-per-process, which only the proc backend takes."""
    if args.members_per_process is not None and args.backend != "proc":
        raise PeerlabError("--members-per-process: members run in processes with --backend proc")
    return args.members_per_process


def _cmd_check(args: argparse.Namespace) -> int:
    from peerlab.scenario import load_scenario

    for path in args.scenarios:
        s = load_scenario(path)
        print(
            f"{path}: ok ({len(s.members)} members, {len(s.links)} links, "
            f"{len(s.events)} events, {s.end_time:g}s)"
        )
        for warning in s.warnings:
            log.warning("%s: %s", path, warning)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    return _compare_and_report(args)[0]


def _compare_and_report(args: argparse.Namespace) -> tuple[int, RunResult]:
    """Run the comparison, print and write it; returns (exit code, the real run's result)."""
    from peerlab.compare import compare_results, format_comparison
    from peerlab.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    out = args.out or f"out/compare-{scenario.name}"
    _file_or_stdout(out, "--out")
    sim = _run(args, scenario, "sim")
    real = _run(args, scenario, args.backend, time_scale=args.time_scale)
    comparison = compare_results(sim, real)
    text = format_comparison(comparison)
    _say(args, text)
    data = json.dumps(comparison, indent=1, sort_keys=True) + "\n"
    if out == STDOUT:
        _write(out, data)
    else:
        stem = Path(out)
        stem.with_suffix(".json").write_text(data)
        stem.with_suffix(".txt").write_text(text + "\n")
        sim.write(stem.parent / f"{stem.name}-sim.json")
        real.write(stem.parent / f"{stem.name}-{args.backend}.json")
        _say(
            args,
            f"\ncomparison written to {stem.with_suffix('.json')} and {stem.with_suffix('.txt')}",
        )
    return (0 if comparison["agree"] else 1), real


def _member_class(args: argparse.Namespace):
    """The member class ``--member-class`` names (the standard one if none)."""
    from peerlab.member import Member, member_class

    return member_class(args.member_class) if args.member_class else Member


def _cmd_explore(args: argparse.Namespace) -> int:
    from peerlab.campaign.spec import parse_seeds
    from peerlab.explorer import CHECKED, explore
    from peerlab.units import parse_duration

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise PeerlabError(f"--seeds: {exc}") from None
    try:
        budget = parse_duration(args.budget) if args.budget else None
    except ValueError as exc:
        raise PeerlabError(f"--budget: {exc}") from None
    faults = [k.strip() for k in args.faults.split(",")] if args.faults else None
    extra = {"faults": faults} if faults else {}
    shown = Progress("exploring", len(seeds), unit=" seeds", enabled=args.verbosity >= 0)
    with shown:
        report = explore(
            args.source,
            seeds=seeds,
            events=args.events,
            budget=budget,
            out=_folder(args.out, "--out"),
            member_class=_member_class(args),
            bound=args.bound,
            max_failures=args.max_failures,
            progress=lambda done, total, failed: shown.update(done, f"{failed} failing"),
            **extra,
        )
    failed = {f.invariant for f in report.failures}
    title = f"peerlab explore {args.source}"
    checked = table("invariant", ">seeds checked", ">seeds failing", title=title)
    for name in CHECKED:
        failing = sum(1 for f in report.failures if f.invariant == name)
        checked.add_row(name, str(report.checked[name]), str(failing) if name in failed else "0")
    lines = [
        f"seeds run: {len(report.seeds)} of {len(seeds)} in {report.wall_time:.1f}s"
        + (f" ({report.skipped} not run: budget or --max-failures)" if report.skipped else "")
    ]
    if report.ok:
        lines.append("no failures")
    for f in report.failures:
        members, events = f.shrunk
        lines.append(
            f"seed {f.seed}: {f.invariant}: {f.violations[0].detail}\n"
            f"  shrunk from {f.original[0]} members and {f.original[1]} events to {members} and "
            f"{events}: {f.path}\n  reproduce: peerlab run {f.path}"
            + (f" --member-class {args.member_class}" if args.member_class else "")
        )
    print(render(checked, *lines))
    if report.ok:
        return 0
    log.error("%d seed(s) failed", len(report.failures))
    return 1


def _address(flag: str, text: str, *, listening: bool = False) -> tuple[str, int]:
    """A HOST:PORT given to ``flag``, as a socket address; a clear error if it is not one."""
    from peerlab.realnet.transport import parse_address

    try:
        return parse_address(text, listening=listening)
    except ValueError as exc:
        raise PeerlabError(f"{flag}: {exc}") from None


def _cmd_member(args: argparse.Namespace) -> int:
    from peerlab.realnet.peer import run_peer
    from peerlab.wire import member_id_problem

    problem = member_id_problem(args.id)
    if problem is not None:
        raise PeerlabError(f"--id: {problem}")
    listen = _address("--listen", args.listen, listening=True)
    for address in args.join:
        if _address("--join", address) == listen:
            raise PeerlabError(f"--join: {address} is this member's own --listen address")
    options = {"verbosity": args.verbosity, "redial": args.redial, "identity": _identity(args)}
    if args.tls:
        if args.keys is None:
            raise PeerlabError("--tls: needs --keys (TLS certificates come from the network)")
        from peerlab.identity import KeyDir

        options["tls"] = KeyDir(args.keys).tls(args.id)
    if args.target_degree:
        from peerlab.member import MemberConfig

        options["config"] = MemberConfig(target_degree=args.target_degree)
    if args.script:
        with open(args.script) as commands:
            return run_peer(
                args.id, args.listen, args.join, commands, False, args.run_for, **options
            )
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    return run_peer(
        args.id, args.listen, args.join, sys.stdin, interactive, args.run_for, **options
    )


def _cmd_conformance(args: argparse.Namespace) -> int:
    from peerlab import conformance

    host, port = _address("TARGET", args.target)
    _file_or_stdout(args.json, "--json")
    # with the JSON report on standard output, the table goes to standard error
    out = sys.stderr if args.json == STDOUT else sys.stdout
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    wanted = {name: what for name, what, _ in [*conformance.CASES, *conformance.SECURE_CASES]}
    authority = None
    if args.keys is not None:
        from peerlab.identity import KeyDir

        authority = KeyDir(args.keys).authority()
    rows = table("case", "result", ">seconds", "detail")

    def told(result: conformance.CaseResult) -> None:
        verdict = "pass" if result.passed else "FAIL"
        print(f"{verdict}  {result.name}: {result.detail}", file=out, flush=True)

    report = conformance.run(
        host, port, cases, progress=told if args.verbosity > 0 else None, authority=authority
    )
    for result in report.cases:
        verdict = "pass" if result.passed else "FAIL"
        detail = result.detail if not result.passed else wanted[result.name]
        rows.add_row(result.name, verdict, f"{result.seconds:.2f}", detail)
    failed = [c.name for c in report.cases if not c.passed]
    summary = f"{len(report.cases) - len(failed)}/{len(report.cases)} cases passed"
    print(render(rows), file=out)
    mode = "open mode" if authority is None else "secure mode"
    print(summary + (f"; failed: {', '.join(failed)}" if failed else "") + f" ({mode})", file=out)
    if args.json is not None:
        _write(args.json, json.dumps(report.as_json(), indent=1) + "\n")
    return 1 if failed else 0


def _identity(args: argparse.Namespace):
    """The member's identity in ``--keys``, or None (open mode, which is said once)."""
    if args.keys is None:
        log.warning(
            "open mode: any peer may join, as any id (for a network of members only, see "
            "'peerlab keys' and --keys)"
        )
        return None
    from peerlab.identity import KeyDir

    identity = KeyDir(args.keys).identity(args.id, time.time)
    log.info("secure mode: network %s", identity.trust.network.hex()[:16])
    return identity


def _load_result(path: str, args: argparse.Namespace) -> RunResult:
    """A RunResult from a results JSON file, or by running a scenario file in sim."""
    from peerlab.results import RunResult
    from peerlab.scenario import load_scenario

    if path.endswith(".json"):
        return RunResult.read(path)
    return _run(args, load_scenario(path), "sim")


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
        if suffix and suffix not in IMAGE_FORMATS:
            raise PeerlabError(
                f"-o {output!r}: a .{suffix} file is not one of {', '.join(IMAGE_FORMATS)} "
                "(name one, or give --format)"
            )
        return suffix or "png"
    if suffix in IMAGE_FORMATS and suffix != wanted:
        raise PeerlabError(f"--format {wanted} does not match -o {output!r} (a .{suffix} file)")
    return wanted


def _save(figure, output: str | Path, fmt: str, **options) -> None:
    """Save ``figure`` to file ``output`` (standard output if ``-``) and close it."""
    import matplotlib.pyplot as plt

    figure.savefig(sys.stdout.buffer if output == STDOUT else output, format=fmt, **options)
    plt.close(figure)


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from peerlab import plot

    fmt = _image_format(args.output, args.format)
    _file_or_stdout(args.output, "-o")
    if args.animate:
        if args.animate == STDOUT:
            raise PeerlabError("--animate: needs a file name (.gif or .mp4), not -")
        _writable(args.animate, "--animate")
    result = _load_result(args.input, args)
    kind, at = args.kind, args.at
    if at is not None and kind not in TIMED_KINDS:
        raise PeerlabError(f"--at: --kind {kind} draws the whole run, not one instant")
    if kind == "compare":
        if args.other:
            other = _load_result(args.other, args)
        elif not args.input.endswith(".json"):
            from peerlab.scenario import load_scenario

            other = _run(args, load_scenario(args.input), "real")
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
            _say(
                args, f"the table has {drawn['pages']} pages; this is page {drawn['page']} (--page)"
            )
    _save(fig, args.output, fmt, dpi=args.dpi, bbox_inches="tight")
    if args.output != STDOUT:
        _say(args, f"{kind} plot written to {args.output}")
    if args.animate:
        info = plot.animate(result, args.animate, frames=args.frames)
        _say(
            args,
            f"animation ({info['frames']} frames, {info['link_changes']} link changes) "
            f"written to {args.animate}",
        )
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from peerlab import viewer

    _file_or_stdout(args.output, "-o")
    result = _load_result(args.input, args)
    page = viewer.page(result)
    _write(args.output, page)
    if args.output != STDOUT:
        size = len(page.encode()) // 1024
        _say(args, f"viewer written to {args.output} ({size} KiB; open it in a browser)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    args.scenario = DEFAULT_SCENARIO
    args.out = None
    args.backend = "real"
    code, real = _compare_and_report(args)
    import matplotlib

    matplotlib.use("Agg")
    from peerlab import plot

    picture = plot.overview(real, "out/quickstart.png")
    print(f"picture of the real run written to {picture}")
    return code


def _verbosity_flags(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="debug detail too (each event applied, each worker started); -vv is the same",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="errors only: no progress, no warnings",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``peerlab`` command."""
    from peerlab import __version__

    parser = _Parser(
        prog="peerlab", description="Build, run, simulate and look at P2P overlay networks."
    )
    parser.add_argument("--version", action="version", version=f"peerlab {__version__}")
    _verbosity_flags(parser, None)
    # -v and -q after a command's name too; unset there, they leave the top level's alone
    flags = argparse.ArgumentParser(add_help=False)
    _verbosity_flags(flags, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **options) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[flags], **options)

    p = command("run", help="run a scenario on one backend")
    p.add_argument("scenario", help="scenario YAML file, or a packaged one's name")
    p.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="sim",
        help="sim: SimPy; real: loopback TCP in this process; proc: one process each",
    )
    p.add_argument("--out", help="write results JSON here (- for standard output)")
    p.add_argument("--trace", help="write the event trace (JSON lines) here (- for stdout)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument(
        "--time-scale",
        type=_scale,
        default=1.0,
        help="real backend: stretch (>1) or squeeze (<1) the timeline",
    )
    p.add_argument(
        "--member-class",
        metavar="MODULE:CLASS",
        help="run this Member subclass (a protocol variant) in place of the standard member",
    )
    p.add_argument(
        "--record",
        metavar="FILE",
        help="real or proc: write a recording of the run here, for peerlab replay",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="proc backend: place member processes on the workers of this Dask scheduler",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="proc backend: place member processes on a local Dask cluster of N worker processes",
    )
    p.add_argument(
        "--members-per-process",
        type=_positive,
        metavar="N",
        help="proc backend: run N members in each process (default: one each up to 16 "
        "processes, then as few per process as keeps to 16)",
    )
    p.set_defaults(func=_cmd_run)

    p = command(
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
        "--bound", type=_scale, default=5.0, help="convergence bound after the final heal (5s)"
    )
    p.add_argument(
        "--max-failures", type=_positive, default=1, help="stop after this many failing seeds (1)"
    )
    p.add_argument("--out", default="out/explore", help="where failing scenarios are written")
    p.add_argument("--member-class", metavar="MODULE:CLASS", help="a protocol variant to explore")
    p.set_defaults(func=_cmd_explore)

    p = command(
        "replay",
        help="re-run a recorded real run in sim, events at their real times; where they part",
    )
    p.add_argument("recording", help="a recording (peerlab run --backend real --record FILE)")
    p.add_argument("--out", help="write the divergence, message by message, as JSON here")
    p.set_defaults(func=_cmd_replay)

    p = command("check", help="validate scenarios without running them")
    p.add_argument("scenarios", nargs="+", help="scenario YAML files")
    p.set_defaults(func=_cmd_check)

    p = command("compare", help="run a scenario in sim and on a real backend, side by side")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument(
        "--backend",
        choices=("real", "proc"),
        default="real",
        help="the real backend to hold the simulation to (default real: one process)",
    )
    p.add_argument(
        "--out",
        help="output path stem (default out/compare-NAME); - writes the comparison JSON to "
        "standard output",
    )
    p.add_argument(
        "--time-scale", type=_scale, default=1.0, help="real run: stretch (>1) or squeeze (<1)"
    )
    p.set_defaults(func=_cmd_compare)

    # imported here: the campaign commands' module builds on this one's helpers
    from peerlab.campaign.cli import add_campaign_commands
    from peerlab.keys_cli import add_keys_commands

    add_campaign_commands(sub, [flags])
    add_keys_commands(sub, [flags])

    p = command("member", help="run one live member with a command prompt")
    p.add_argument("--id", required=True, help="this member's id")
    p.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    p.add_argument("--join", nargs="*", default=[], metavar="HOST:PORT")
    p.add_argument("--script", help="read commands from this file instead of stdin")
    p.add_argument(
        "--keys",
        metavar="DIR",
        help="secure mode: this member's keys and certificate (ID.key, ID.cert), the network's "
        "key (network.pub) and revocation list, as 'peerlab keys' writes them",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="with --keys: encrypt links with TLS 1.3 (certificates ID.pem and network.pem)",
    )
    p.add_argument(
        "--run-for",
        type=_seconds,
        metavar="SECONDS",
        help="after the last command, keep running this long",
    )
    p.add_argument(
        "--redial",
        type=_scale,
        default=1.0,
        metavar="SECONDS",
        help="first wait before dialling a lost --join or connect address again; it doubles "
        "with each try, up to 30s (default 1)",
    )
    p.add_argument(
        "--target-degree",
        type=_positive,
        metavar="N",
        help="also dial members learned from the network while fewer than N are neighbours",
    )
    p.set_defaults(func=_cmd_member)

    p = command(
        "conformance",
        help="check an implementation of the wire protocol listening at HOST:PORT",
        description="Scripted exchanges from docs/protocol.md against any implementation "
        "listening at TARGET, as fake members on raw sockets (from their own 127.0.x.y "
        "addresses when the target is on loopback): a pass/fail table, exit 1 if any case "
        "fails. Open mode, or with --keys the secure-mode cases.",
    )
    p.add_argument("target", metavar="TARGET", help="HOST:PORT of the implementation to test")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON here")
    p.add_argument(
        "--cases", metavar="NAMES", help="comma-separated case names to run (default: all)"
    )
    p.add_argument(
        "--keys",
        metavar="DIR",
        help="the target is in secure mode: its network's key folder, with the authority's "
        "network.key (the tester certifies its fake members with it)",
    )
    p.set_defaults(func=_cmd_conformance)

    p = command("plot", help="draw a scenario (run in sim first) or a results file")
    p.add_argument("input", metavar="SCENARIO_OR_RESULTS")
    p.add_argument(
        "-o", "--output", required=True, help="image file to write (.png, .svg, ...; - for stdout)"
    )
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
        type=_seconds,
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
    p.set_defaults(func=_cmd_plot)

    p = command("view", help="write a run's interactive viewer: one offline HTML file")
    p.add_argument(
        "input", metavar="RESULTS_OR_SCENARIO", help="results JSON, or a scenario to run"
    )
    p.add_argument("-o", "--output", required=True, help="HTML file to write (- for stdout)")
    p.set_defaults(func=_cmd_view)

    p = command("demo", help="compare sim and real on the built-in quickstart scenario")
    p.add_argument(
        "--time-scale", type=_scale, default=1.0, help="real run: stretch (>1) or squeeze (<1)"
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def _settle(args: argparse.Namespace) -> None:
    """Note whether an output flag names standard output (one at most may)."""
    to_stdout = [flag for name, flag in OUTPUT_FLAGS.items() if getattr(args, name, None) == STDOUT]
    if len(to_stdout) > 1:
        raise PeerlabError(f"{' and '.join(to_stdout)}: only one output can be standard output")
    args.to_stdout = bool(to_stdout)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """While the command runs, SIGINT and SIGTERM raise KeyboardInterrupt (with the signal's
    name) once, so that what it started is cleaned up; further ones are ignored meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]

    def interrupt(signum: int, frame: object) -> None:
        for s in kinds:
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in kinds}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``peerlab`` console script; bad input exits 2 with one clear line,
    an interrupt 130 (SIGTERM 143)."""
    try:
        with _interruptible():
            args = build_parser().parse_args(argv)
            args.verbosity = -1 if args.quiet else (args.verbose or 0)
            setup_logging(args.verbosity)
            _settle(args)
            status = args.func(args)
            sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
            return status
    except BrokenPipeError:
        # the reader went away (``peerlab run ... | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as exc:
        log.warning("interrupted")
        return 128 + (signal.SIGTERM if exc.args == ("SIGTERM",) else signal.SIGINT)
    except (PeerlabError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
