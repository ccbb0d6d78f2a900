"""peerlab explore's throughput and shrinking.

Schedules judged per minute (each runs twice in the simulator, as explore runs it) on random
4-regular networks of 20 and 40 members with the default 20 faults a schedule; and the time to
find and shrink the tests' planted bug (a member that never fights back, tests/planted.py) on
the quickstart ring. Run: python benchmarks/bench_explore.py [SEEDS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness import machine_line

import peerlab
from peerlab.explorer import explore
from peerlab.schedules import Base

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the planted bug lives with the tests that use it

from planted import NoFightBack  # noqa: E402


def network(members: int) -> Base:
    """A random 4-regular network of ``members`` with the scenario defaults."""
    text = (
        f"name: r{members}\nseed: 1\nmembers: {{count: {members}, prefix: n}}\n"
        "topology: {generator: {kind: random_regular, degree: 4}}\n"
    )
    return Base.of(peerlab.load_scenario(f"r{members}", text=text))


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(machine_line())
    for members in (20, 40):
        report = explore(network(members), seeds=range(1, seeds + 1), out=None)
        assert report.ok, report.failures
        rate = 60 * len(report.seeds) / report.wall_time
        print(
            f"{members} members: {len(report.seeds)} schedules in {report.wall_time:.1f}s, "
            f"{rate:.0f} schedules a minute (each run twice)"
        )
    quickstart = ROOT / "scenarios" / "quickstart.yaml"
    with tempfile.TemporaryDirectory() as out:
        start = time.monotonic()
        report = explore(quickstart, seeds=range(1, 51), out=out, member_class=NoFightBack)
        took = time.monotonic() - start
    (failure,) = report.failures
    print(
        f"planted bug (quickstart, never fights back): found at seed {failure.seed} of "
        f"{len(report.seeds)}, shrunk from {failure.original[0]} members and "
        f"{failure.original[1]} events to {failure.shrunk[0]} and {failure.shrunk[1]} "
        f"in {took:.1f}s all told"
    )


if __name__ == "__main__":
    main()
