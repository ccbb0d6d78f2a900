"""The ``peerlab`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from peerlab.oracle import table_errors
    from sim import SimNetwork

    net = SimNetwork(seed=args.seed)
    names = [chr(ord("a") + i) for i in range(6)]
    for name in names:
        net.add_member(name)
    for a, b in zip(names, names[1:] + names[:1], strict=True):
        net.connect(a, b)
    net.run(2.0)
    msg_id = net.members["a"].send("d", b"hello")
    net.run(1.0)
    print(f"ring of {len(names)} members, simulated for {net.now:.1f}s\n")
    for name in names:
        table = net.members[name].routing_table()
        row = "  ".join(f"{d}->{r['next_hop']}({r['hops']})" for d, r in table.items())
        print(f"  {name}: {row}")
    for e in net.tracer.of_kind("deliver"):
        if e.fields["msg_id"] == msg_id:
            print(f"\nmessage a->d delivered at {e.time:.3f}s via {' -> '.join(e.fields['path'])}")
    errors = table_errors({m: net.members[m].routes for m in names}, net.links())
    print("routes match networkx:", errors if errors else "yes")
    return 0 if not errors else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``peerlab`` command."""
    parser = argparse.ArgumentParser(prog="peerlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a small ring and print its routing tables")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``peerlab`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
