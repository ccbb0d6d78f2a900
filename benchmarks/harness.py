"""What the benchmark scripts share: the machine line, and baselines run in their own venv."""

from __future__ import annotations

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


def external_baseline(script: str, argument: str) -> float | None:
    """Run ``benchmarks/SCRIPT ARGUMENT`` with the interpreter in ``PEERLAB_BASELINE_PYTHON``
    (a venv holding packages that cannot share ours) and return the number it reports as
    ``RESULT n``; None when the variable is not set."""
    python = os.environ.get("PEERLAB_BASELINE_PYTHON")
    if not python:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    out = subprocess.run(
        [python, path, argument], capture_output=True, text=True, timeout=600, check=True
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return float(line.split()[1])


def spread(values: list[float]) -> str:
    """``median (quartiles q1-q3, range min-max)`` of a list of ratios."""
    q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return (
        f"median {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}, range {min(values):.3f}-{max(values):.3f})"
    )
