"""Parsing of durations and bandwidths as scenarios write them (``5ms``, ``100Mbps``)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|µs|ms|s|m|min)?\s*$")
_SECONDS = {None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "m": 60.0, "min": 60.0}
_BANDWIDTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(bps|kbps|Mbps|Gbps)?\s*$")
_BPS = {None: 1.0, "bps": 1.0, "kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9}


def parse_duration(value: object) -> float:
    """Seconds from ``"5ms"``, ``"1.5s"``, ``"200us"``, ``"2m"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 5ms, 2s or 0.5, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a duration like 5ms, 2s or 0.5, got {value!r}")
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_bandwidth(value: object) -> float:
    """Bits per second from ``"100Mbps"``, ``"512kbps"``, ``"1Gbps"`` or a plain number (bps)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a bandwidth like 100Mbps, got {value!r}")
    if isinstance(value, int | float):
        bps = float(value)
    else:
        match = _BANDWIDTH.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a bandwidth like 100Mbps, 512kbps or 1Gbps, got {value!r}")
        bps = float(match.group(1)) * _BPS[match.group(2)]
    if bps < 0:
        raise ValueError(f"a bandwidth cannot be negative, got {value!r}")
    return bps
