"""YAML scenarios: a network, what happens to it, and what should hold afterwards.

Loading is strict and happens in passes, as Shadow's config does: the file is read as YAML
(:mod:`~peerlab.scenario.document`); its *structure* is converted to typed structs that refuse
unknown keys (:mod:`~peerlab.scenario.schema`); then its *meaning* is checked (unique names,
events that name known members, generator parameters that fit, payloads that fit a frame), a
topology file it names is read, and links are generated (:mod:`~peerlab.scenario.build`).
Every problem found is reported at once, in one :class:`~peerlab.errors.ScenarioError`, each
naming the file, the line, the key path, the bad value and what was expected.
``scenarios/README.md`` documents every key; :mod:`~peerlab.scenario.events` is the table of
event kinds.
"""

from __future__ import annotations

from pathlib import Path

from peerlab.scenario.build import build_scenario
from peerlab.scenario.document import Document, packaged, packaged_names, read_document
from peerlab.scenario.events import EVENT_KINDS, EVENTS, TOPOLOGY_EVENTS, EventKind
from peerlab.scenario.generators import GENERATORS
from peerlab.scenario.model import (
    SCENARIO_MEMBER_DEFAULTS,
    Event,
    Expect,
    LinkParams,
    LinkSpec,
    Scenario,
    member_config,
)
from peerlab.scenario.payload import payload_limit
from peerlab.scenario.schema import MEMBER_KEYS

__all__ = [
    "EVENTS",
    "EVENT_KINDS",
    "GENERATORS",
    "MEMBER_KEYS",
    "SCENARIO_MEMBER_DEFAULTS",
    "TOPOLOGY_EVENTS",
    "Document",
    "Event",
    "EventKind",
    "Expect",
    "LinkParams",
    "LinkSpec",
    "Scenario",
    "build_scenario",
    "load_scenario",
    "member_config",
    "packaged",
    "packaged_names",
    "payload_limit",
    "read_document",
]


def load_scenario(source: str | Path, text: str | None = None) -> Scenario:
    """Load and validate a scenario file (or ``text``, labelled ``source`` in messages).

    A bare name that is not a file (``quickstart``) names a scenario packaged with peerlab.
    """
    return build_scenario(read_document(source, text))
