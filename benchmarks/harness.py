"""What the benchmark scripts share: the machine line, the bare SimPy loop every simulation
figure is measured against, and other packages' baselines (installed in the benchmarks'
environment, see benchmarks/README.md)."""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time

from peerlab.collector import cycle_collection_paused


def machine_line() -> str:
    """Date, Python and architecture, printed at the top of every benchmark run."""
    return (
        f"{time.strftime('%Y-%m-%d')}  {platform.python_implementation()} "
        f"{platform.python_version()}  {platform.machine()}"
    )


def bare_simpy(callbacks: int) -> float:
    """Wall seconds for ``callbacks`` timeout callbacks in a bare SimPy environment, with the
    cycle collector held off as it is while a SimNetwork runs, so both pay the same."""
    import simpy

    env = simpy.Environment()
    left = [callbacks]

    def hop(_event) -> None:
        left[0] -= 1
        if left[0] > 0:
            env.timeout(0.001).callbacks.append(hop)

    for _ in range(100):
        env.timeout(0.001).callbacks.append(hop)
    with cycle_collection_paused():
        t0 = time.perf_counter()
        env.run()
        return time.perf_counter() - t0


def installed(module: str) -> bool:
    """Whether ``module`` (a baseline's package) is installed in this environment."""
    return importlib.util.find_spec(module) is not None


def external_baseline(script: str, argument: str, module: str) -> float | None:
    """Run ``benchmarks/SCRIPT ARGUMENT`` in a process of its own under this interpreter and
    return the number it reports as ``RESULT n``; None when the baseline's package ``module``
    is not installed here."""
    if not installed(module):
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    out = subprocess.run(
        [sys.executable, path, argument], capture_output=True, text=True, timeout=600, check=True
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return float(line.split()[1])


def spread(values: list[float]) -> str:
    """``median (quartiles q1-q3, range min-max)`` of a list of ratios."""
    q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return (
        f"median {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}, range {min(values):.3f}-{max(values):.3f})"
    )
