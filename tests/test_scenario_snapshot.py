"""Every packaged scenario, and a set of scenario texts that use every key and event kind, load
to the same validated scenario as when the snapshot was taken (``snapshot/scenarios.json``).

Run this file (``python tests/test_scenario_snapshot.py``) to take the snapshot again after a
change that is meant to change what scenarios load to.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from peerlab.campaign.spec import load_campaign
from peerlab.scenario import Scenario, load_scenario
from peerlab.schedules import Base, generate

HERE = Path(__file__).parent
ROOT = HERE.parent
FOLDER = HERE / "snapshot"
SNAPSHOT = FOLDER / "scenarios.json"
CAMPAIGN_FILES = [ROOT / "scenarios/campaigns/degree-vs-size.yaml", HERE / "campaigns/grid.yaml"]
SCENARIO_FILES = sorted(
    {*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("scenarios/campaigns/*.yaml")} - set(CAMPAIGN_FILES)
)

#: scenario texts for what the packaged scenarios leave out: every generator, numbers as
#: names, member settings, the rarer event kinds and forms, an edge-list topology file
TEXTS = {
    "generators": """
members: {count: 12, prefix: g}
security: {mode: signed}
topology: {generator: {kind: grid_2d, rows: 3, cols: 4}}
events:
  - {at: 1s, pause: g03}
  - {at: 1.5s, resume: g03}
  - {at: 2s, power_off: g05}
  - {at: 2s, link_cut: [g00, g01]}
  - {at: 3s, partition: {groups: [[g00, g01], [g02, g04]], one_way: true}}
  - {at: 4s, heal: true}
  - {at: 4s, restart: g05}
  - {at: 5s, traffic: {count: 3, size: 0, reliable: true}}
member: {keepalive_interval: 100ms, dead_timeout: 1s, default_ttl: 30, target_degree: 3,
         reliable_window: 8, ack_timeout: 0.5, flood_delay: 1ms}
expect: {delivered: 0.5, invariants: true}
duration: 9s
""",
    "numbers as names": """
name: 42
description: numbered members
seed: 3
members: [1, 2, 3, 4]
defaults: {latency: 2, jitter: 500us, bandwidth: 1Gbps, loss: 0.01}
topology:
  links: [[1, 2], {between: [2, 3], bandwidth: 512kbps, loss: 0}, [3, 4]]
events:
  - {at: 0.5, send: {from: 1, to: 4, payload: 12345}}
  - {at: 1m, link_up: [4, 1]}
settle: 500ms
""",
    **{
        f"generator {kind}": f"members: {{count: 9}}\ntopology: {{generator: {spec}}}\n"
        for kind, spec in {
            "line": "{kind: line}",
            "ring": "{kind: ring}",
            "star": "{kind: star}",
            "complete": "{kind: complete}",
            "random_regular": "{kind: random_regular, degree: 4, seed: 5}",
            "erdos_renyi": "{kind: erdos_renyi, p: 0.4}",
            "barabasi_albert": "{kind: barabasi_albert, m: 2}",
            "watts_strogatz": "{kind: watts_strogatz, k: 4, p: 0.2, seed: 1}",
        }.items()
    },
    "edge list": "topology: {file: edges.csv}\nmembers: [x, y, z, w]\n",
    "odd values": """
members: {count: 11}
topology: {generator: {kind: line}}
events:
  - {at: 1s, send: {from: m00, to: m10, payload: true, reliable: false}}
  - {at: 1s, send: {from: m10, to: m00, payload: 2.5}}
  - {at: 2s, join: {member: loner, connect: []}}
  - {at: 2s, partition: [[m00], [m01, m02], [loner]]}
expect: {routes: null, delivered: all, converged_within: 1500us}
""",
}


def _schedules() -> dict[str, str]:
    """Explorer schedules: every fault kind, as ``peerlab explore`` writes them."""
    base = Base.of(load_scenario(ROOT / "scenarios/quickstart.yaml"))
    return {f"schedule {seed}": generate(base, seed, events=30).text() for seed in (1, 2, 3)}


def _content(scenario: Scenario) -> dict[str, Any]:
    """A scenario as JSON data, without the label it was read under."""
    data = dataclasses.asdict(scenario)
    del data["source"]
    return json.loads(json.dumps(data))


def snapshot() -> dict[str, Any]:
    """What every scenario of the snapshot loads to now, and the keys of every campaign run."""
    scenarios = {
        str(path.relative_to(ROOT)): _content(load_scenario(path)) for path in SCENARIO_FILES
    }
    for label, text in {**TEXTS, **_schedules()}.items():
        scenarios[label] = {
            "text": text,
            **_content(load_scenario(FOLDER / f"{label}.yaml", text=text)),
        }
    keys = {
        str(path.relative_to(ROOT)): [run.key for run in load_campaign(path).runs]
        for path in CAMPAIGN_FILES
    }
    return {"scenarios": scenarios, "campaign_run_keys": keys}


@pytest.fixture(scope="module")
def taken() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def test_every_scenario_loads_as_in_the_snapshot(taken):
    for label, entry in taken["scenarios"].items():
        expected = {key: value for key, value in entry.items() if key != "text"}
        if "text" in entry:
            loaded = load_scenario(FOLDER / f"{label}.yaml", text=entry["text"])
        else:
            loaded = load_scenario(ROOT / label)
        assert _content(loaded) == expected, label


def test_every_campaign_run_keeps_its_key(taken):
    for label, keys in taken["campaign_run_keys"].items():
        assert [run.key for run in load_campaign(ROOT / label).runs] == keys, label


def _write(data: dict[str, Any]) -> None:
    """The snapshot as JSON with one line per scenario, so a change shows as the lines it made."""
    lines = [
        f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in data["scenarios"].items()
    ]
    keys = json.dumps(data["campaign_run_keys"], sort_keys=True)
    body = ",\n".join(lines)
    SNAPSHOT.write_text(f'{{"campaign_run_keys": {keys},\n"scenarios": {{\n{body}\n}}}}\n')


if __name__ == "__main__":
    _write(snapshot())
