"""Record a real run, replay it in the simulator, and say where the two part.

A recording (``peerlab run --backend real|proc --record FILE``) keeps the run's results (each
event with the scenario time it was actually applied at, each link's delay as the members
measured it, every message's fate and path) beside the scenario it ran. :func:`replay` runs
that scenario in the simulator with every event moved to the time it was applied in the real
run and every measured link at its measured delay, and :func:`divergence` compares the two
message by message: which were delivered in one world only, which took another path, and each
delivered message's latency error, with each event's convergence side by side.

A link's measured delay is half the shortest keepalive round trip on it: the link's latency
and what the two members' loops added. A link not up at the end of the run was not measured
and keeps its modelled latency.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from peerlab.errors import PeerlabError
from peerlab.results import RunResult, convergence_time
from peerlab.scenario import Scenario, load_scenario

#: The version of the recording format.
RECORDING_VERSION = 1


def record(result: RunResult, scenario: Scenario, path: str | Path) -> None:
    """Write a recording of ``result``, a run of ``scenario``, to ``path``."""
    if result.backend == "sim":
        raise PeerlabError("--record: only a real or proc run is worth replaying")
    source = Path(scenario.source)
    data = {
        "recording": RECORDING_VERSION,
        # a file by its absolute path; a packaged scenario by its name
        "scenario": str(source.resolve()) if source.is_file() else scenario.source,
        "seed": scenario.seed,
        "result": result.to_dict(),
    }
    Path(path).write_text(json.dumps(data) + "\n")


def read_recording(path: str | Path) -> tuple[Scenario, RunResult]:
    """The scenario and the real run a recording holds; PeerlabError says what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PeerlabError(f"{path}: cannot read the recording: {exc}") from None
    if not isinstance(data, dict) or data.get("recording") != RECORDING_VERSION:
        raise PeerlabError(
            f"{path}: not a recording of version {RECORDING_VERSION} "
            "(made by peerlab run --backend real|proc --record FILE)"
        )
    scenario = load_scenario(data["scenario"]).with_seed(data["seed"])
    return scenario, RunResult.from_dict(data["result"])


def as_applied(scenario: Scenario, real: RunResult) -> Scenario:
    """``scenario`` with every event at the time the real run applied it, and every link the
    real run measured at its measured delay."""
    ordered = sorted(scenario.events, key=lambda e: (e.at, e.index))
    if len(ordered) != len(real.events):
        raise PeerlabError(
            f"the recording has {len(real.events)} events, the scenario {len(ordered)}: "
            "the scenario file changed since the run"
        )
    moved = []
    for event, happened in zip(ordered, real.events, strict=True):
        if happened["kind"] != event.kind:
            raise PeerlabError(
                f"event {event.index} is {event.kind} in the scenario, {happened['kind']} in "
                "the recording: the scenario file changed since the run"
            )
        applied = happened.get("applied_at")
        moved.append(event if applied is None else dataclasses.replace(event, at=applied))
    links = []
    for link in scenario.links:
        delay = real.link_delays.get("-".join(link.pair))
        if delay is not None:
            link = dataclasses.replace(link, params=dataclasses.replace(link.params, latency=delay))
        links.append(link)
    return dataclasses.replace(scenario, events=tuple(moved), links=tuple(links))


def replay(path: str | Path) -> tuple[dict[str, Any], RunResult, RunResult]:
    """Replay a recording in the simulator; returns the divergence, the real run and the
    replayed one."""
    from peerlab.runner import run

    scenario, real = read_recording(path)
    sim = run(as_applied(scenario, real), "sim")
    return divergence(real, sim), real, sim


def divergence(real: RunResult, sim: RunResult) -> dict[str, Any]:
    """Where a replay parts from the real run, message by message and event by event."""
    ours = {m["id"]: m for m in sim.messages}
    theirs = {m["id"]: m for m in real.messages}
    messages = []
    for msg_id in sorted(set(ours) | set(theirs)):
        r, s = theirs.get(msg_id), ours.get(msg_id)
        row: dict[str, Any] = {
            "id": msg_id,
            "real": _fate(r),
            "sim": _fate(s),
            "same_path": r is not None and s is not None and r["path"] == s["path"],
        }
        lat_r, lat_s = _latency(r), _latency(s)
        if lat_r is not None and lat_s is not None and lat_s > 0:
            row["latency_error"] = round((lat_r - lat_s) / lat_s, 4)
        messages.append(row)
    errors = [abs(m["latency_error"]) for m in messages if "latency_error" in m]
    only_real = [m["id"] for m in messages if m["real"] == "delivered" != m["sim"]]
    only_sim = [m["id"] for m in messages if m["sim"] == "delivered" != m["real"]]
    paths = [m["id"] for m in messages if m["real"] == m["sim"] == "delivered"]
    convergence = [
        {"event": w["event"], "at": w["at"], "real": _took(w), "sim": _took(v)}
        for w, v in zip(real.convergence, sim.convergence, strict=False)
    ]
    return {
        "scenario": real.scenario,
        "backend": real.backend,
        "messages": messages,
        "delivered_in_both": len(paths),
        "delivered_only_real": only_real,
        "delivered_only_sim": only_sim,
        "different_paths": [m["id"] for m in messages if m["id"] in paths and not m["same_path"]],
        "latency_error": {
            "median": round(statistics.median(errors), 4) if errors else None,
            "max": round(max(errors), 4) if errors else None,
        },
        "convergence": convergence,
        "same_delivered": not only_real and not only_sim,
    }


def _fate(message: dict[str, Any] | None) -> str:
    if message is None:
        return "not sent"
    if message["delivered_at"] is not None:
        return "delivered"
    return message.get("drop_reason") or "lost"


def _latency(message: dict[str, Any] | None) -> float | None:
    if message is None or message["delivered_at"] is None:
        return None
    return message["delivered_at"] - message["sent_at"]


def _took(window: dict[str, Any]) -> float | None:
    took = convergence_time(window)
    return None if took is None else round(took, 4)
