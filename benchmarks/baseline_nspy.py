"""Baseline for bench_sim.py and count_instructions.py: ns.py's packet generator -> wire -> sink.

ns.py is installed in the benchmarks' own environment (see benchmarks/README.md), which also
holds peerlab, so bench_sim.py times it in the benchmark's process, just before and just after each
of its rounds. Run alone: python benchmarks/baseline_nspy.py [PACKETS]; prints "PACKETS n", the
packets delivered, and "RESULT r", packets delivered per wall second.
"""

import gc
import sys
import time

import simpy
from ns.packet.dist_generator import DistPacketGenerator
from ns.packet.sink import PacketSink
from ns.port.wire import Wire


def run(count: int) -> tuple[int, float]:
    """Send ``count`` 100-byte packets, one a millisecond, over a 5 ms wire into a sink;
    returns (packets delivered, wall seconds).

    The objects that exist already are frozen out of the cycle collector's sight for the run:
    ns.py collects as it runs, and in a process holding a converged peerlab network its
    collections would walk that network too, which ns.py in a process of its own does not pay.
    """
    env = simpy.Environment()
    gen = DistPacketGenerator(env, "gen", lambda: 0.001, lambda: 100, finish=count * 0.001)
    wire = Wire(env, lambda: 0.005)
    sink = PacketSink(env, rec_arrivals=False, rec_waits=False, rec_flow_ids=False)
    gen.out = wire
    wire.out = sink
    gc.freeze()
    try:
        t0 = time.perf_counter()
        env.run(until=count * 0.001 + 1)
        elapsed = time.perf_counter() - t0
    finally:
        gc.unfreeze()
    return sum(sink.packets_received.values()), elapsed


def main() -> None:
    received, elapsed = run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
    print(f"PACKETS {received}")
    print(f"RESULT {received / elapsed}", flush=True)


if __name__ == "__main__":
    main()
