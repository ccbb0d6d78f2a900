"""Parsing of durations and bandwidths as scenarios write them (``5ms``, ``100Mbps``)."""

from __future__ import annotations

import re

_NUMBER = r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*({units})?\s*$"
_SECONDS = {
    **{None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6},
    **{"m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
}
_BPS = {None: 1.0, "bps": 1.0, "kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9}
_DURATION = re.compile(_NUMBER.format(units="us|µs|ms|s|min|m|h|d"))
_BANDWIDTH = re.compile(_NUMBER.format(units="bps|kbps|Mbps|Gbps"))


def _parse(value: object, pattern: re.Pattern, scale: dict, what: str, examples: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        match = pattern.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a {what} like {examples}, got {value!r}")
        number = float(match.group(1)) * scale[match.group(2)]
    if number < 0:
        raise ValueError(f"a {what} cannot be negative, got {value!r}")
    return number


def parse_duration(value: object) -> float:
    """Seconds from ``"5ms"``, ``"1.5s"``, ``"200us"``, ``"2m"``, ``"1h"``, ``"30d"`` or a plain
    number of seconds."""
    return _parse(value, _DURATION, _SECONDS, "duration", "5ms, 2s or 0.5")


def parse_bandwidth(value: object) -> float:
    """Bits per second from ``"100Mbps"``, ``"512kbps"``, ``"1Gbps"`` or a plain number (bps)."""
    return _parse(value, _BANDWIDTH, _BPS, "bandwidth", "100Mbps, 512kbps or 1Gbps")
