"""Baseline for bench_sim.py: ns.py's packet generator -> wire -> sink, packets per wall second.

Runs in its own environment (ns.py clashes with other simulators' wheels):
    python -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install ns.py
    /tmp/benchenv/bin/python benchmarks/baseline_nspy.py 200000
Prints "PACKETS n", the packets delivered, "RESULT r": packets delivered per wall second, and
"BARE b": callbacks per wall second of the bare SimPy loop (benchmarks/harness.py), run just
before and just after ns.py in this process, so that ns.py's speed can also be taken relative
to the loop peerlab's is measured against, each in its own process.
"""

import sys
import time

import simpy
from harness import bare_simpy
from ns.packet.dist_generator import DistPacketGenerator
from ns.packet.sink import PacketSink
from ns.port.wire import Wire


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    callbacks = 5 * count
    before = bare_simpy(callbacks)
    env = simpy.Environment()
    gen = DistPacketGenerator(env, "gen", lambda: 0.001, lambda: 100, finish=count * 0.001)
    wire = Wire(env, lambda: 0.005)
    sink = PacketSink(env, rec_arrivals=False, rec_waits=False, rec_flow_ids=False)
    gen.out = wire
    wire.out = sink
    t0 = time.perf_counter()
    env.run(until=count * 0.001 + 1)
    elapsed = time.perf_counter() - t0
    received = sum(sink.packets_received.values())
    print(f"PACKETS {received}")
    print(f"RESULT {received / elapsed}")
    print(f"BARE {callbacks / ((before + bare_simpy(callbacks)) / 2)}", flush=True)


if __name__ == "__main__":
    main()
