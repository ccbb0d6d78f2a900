"""What the benchmark scripts share: the machine line, the bare SimPy loop every simulation
figure is measured against, and baselines run in their own venv."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import time


def machine_line() -> str:
    """Date, Python and architecture, printed at the top of every benchmark run."""
    return (
        f"{time.strftime('%Y-%m-%d')}  {platform.python_implementation()} "
        f"{platform.python_version()}  {platform.machine()}"
    )


def bare_simpy(callbacks: int) -> float:
    """Wall seconds for ``callbacks`` timeout callbacks in a bare SimPy environment.

    The cycle collector is held off as it is while a SimNetwork runs, so both pay the same
    (``peerlab.collector.cycle_collection_paused``, written out here: this imports only SimPy,
    so the baselines' own environment, which has no peerlab, runs the same loop).
    """
    import simpy

    env = simpy.Environment()
    left = [callbacks]

    def hop(_event) -> None:
        left[0] -= 1
        if left[0] > 0:
            env.timeout(0.001).callbacks.append(hop)

    for _ in range(100):
        env.timeout(0.001).callbacks.append(hop)
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        env.run()
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def external_baseline(script: str, argument: str) -> dict[str, float] | None:
    """Run ``benchmarks/SCRIPT ARGUMENT`` with the interpreter in ``PEERLAB_BASELINE_PYTHON``
    (a venv holding packages that cannot share ours) and return the numbers it reports on
    lines ``NAME n`` (``RESULT`` always among them); None when the variable is not set."""
    python = os.environ.get("PEERLAB_BASELINE_PYTHON")
    if not python:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    out = subprocess.run(
        [python, path, argument], capture_output=True, text=True, timeout=600, check=True
    )
    numbers = {}
    for line in out.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name.isupper():
            numbers[name] = float(value)
    return numbers


def spread(values: list[float]) -> str:
    """``median (quartiles q1-q3, range min-max)`` of a list of ratios."""
    q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return (
        f"median {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}, range {min(values):.3f}-{max(values):.3f})"
    )
