"""The structure of a scenario file: every key, its type and its default, as msgspec structs
that refuse unknown keys. ``scenarios/README.md`` documents each key.

:func:`parse` converts a YAML document to these types and notes every problem of structure;
it reads nothing but the document (a topology file is read later, by the build).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from peerlab.scenario.convert import Problems, convert
from peerlab.scenario.events import EVENTS, MemberPair
from peerlab.scenario.generators import Generator
from peerlab.scenario.model import LinkParams
from peerlab.scenario.scalars import Bandwidth, Duration, MemberName, Name

Loss = Annotated[float, msgspec.Meta(ge=0.0, le=0.99)]
Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class LinkSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Link parameters a section sets (unset: left as they are)."""

    latency: Duration | UnsetType = UNSET
    jitter: Duration | UnsetType = UNSET
    bandwidth: Bandwidth | UnsetType = UNSET
    loss: Loss | UnsetType = UNSET

    def over(self, base: LinkParams) -> LinkParams:
        """``base`` with the parameters this section sets."""
        given = {f: float(v) for f in LINK_KEYS if (v := getattr(self, f)) is not UNSET}
        return replace(base, **given) if given else base


LINK_KEYS: tuple[str, ...] = LinkSettings.__struct_fields__


class Link(LinkSettings, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A link written as a mapping: its two members and its own parameters."""

    between: MemberPair


#: An item of ``topology.links``: ``[a, b]``, or a mapping with ``between``.
LinkItem = MemberPair | Link


class MemberCount(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``members`` as a count: ``{count: 50, prefix: m}`` names them ``m00``..``m49``."""

    count: Annotated[int, msgspec.Meta(ge=1)]
    prefix: Name = Name("m")


class Topology(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How members are linked at the start: exactly one of the three."""

    #: each item converts on its own (to a :data:`LinkItem`), so a bad one hides no other
    links: Annotated[list[Any], msgspec.Meta(description="a list of links")] | UnsetType = UNSET
    generator: Generator | UnsetType = UNSET
    file: Name | UnsetType = UNSET


TOPOLOGY_KEYS: tuple[str, ...] = Topology.__struct_fields__


class MemberSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``member``: the member settings a scenario changes (unset: the scenario default)."""

    keepalive_interval: Duration | UnsetType = UNSET
    dead_timeout: Duration | UnsetType = UNSET
    handshake_timeout: Duration | UnsetType = UNSET
    flood_delay: Duration | UnsetType = UNSET
    route_delay: Duration | UnsetType = UNSET
    route_hold: Duration | UnsetType = UNSET
    default_ttl: Count | UnsetType = UNSET
    max_age: Duration | UnsetType = UNSET
    target_degree: Count | UnsetType = UNSET
    ack_timeout: Duration | UnsetType = UNSET
    reliable_deadline: Duration | UnsetType = UNSET
    reliable_window: Count | UnsetType = UNSET

    def given(self) -> dict[str, float]:
        """The settings given, as plain numbers."""
        return {
            f: float(v) if isinstance(v, Duration) else v
            for f in self.__struct_fields__
            if (v := getattr(self, f)) is not UNSET
        }


MEMBER_KEYS: tuple[str, ...] = MemberSettings.__struct_fields__


class ExpectSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``expect``: what must hold for the run to pass."""

    delivered: Literal["all"] | Ratio | UnsetType = UNSET
    routes: Literal["shortest"] | None = None
    converged_within: Duration | UnsetType = UNSET
    invariants: bool = False


class SecuritySpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``security``: open (anyone may join) or signed (members of one network authority only:
    certified Hellos, signed adverts, authenticated data; see README, "Secure mode")."""

    mode: Literal["open", "signed"] = "open"
    #: encrypt real links with TLS 1.3 too (real backends only; needs mode signed)
    tls: bool = False


class ScenarioSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A scenario file's top level."""

    name: Name | UnsetType = UNSET
    description: str = ""
    seed: int = 0
    defaults: LinkSettings = LinkSettings()
    members: list[MemberName] | MemberCount | UnsetType = UNSET
    topology: Topology
    #: each item converts on its own (to an :data:`EventItem`), so a bad one hides no other
    events: Annotated[list[Any], msgspec.Meta(description="a list of events")] = []
    expect: ExpectSpec = ExpectSpec()
    settle: Duration = Duration(2.0)
    duration: Duration | UnsetType = UNSET
    member: MemberSettings = MemberSettings()
    security: SecuritySpec = SecuritySpec()


#: An item of ``events``: ``at`` and one action of :data:`~peerlab.scenario.events.EVENTS`
#: (which one, and that there is only one, is a question of meaning).
EventItem = msgspec.defstruct(
    "EventItem",
    [("at", Duration), *((kind.name, kind.value | UnsetType, UNSET) for kind in EVENTS.values())],
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
    module=__name__,
)


@dataclass(frozen=True)
class Parsed:
    """A scenario document converted to the schema as far as it converts: each section that
    did not is at its default, each link or event item that did not is None (``links`` is
    None if the topology is not a list of links)."""

    spec: ScenarioSpec
    links: list[LinkItem | None] | None
    events: list[Any]


def parse(data: Any, problems: Problems) -> Parsed | None:
    """``data`` (a YAML document) converted to the schema, every problem of structure added to
    ``problems``; None if the top level does not convert."""
    spec = convert({} if data is None else data, ScenarioSpec, (), problems)
    if spec is None:
        return None
    links = spec.topology.links
    return Parsed(
        spec,
        None
        if links is UNSET
        else [
            convert(item, LinkItem, ("topology", "links", i), problems)
            for i, item in enumerate(links)
        ],
        [convert(item, EventItem, ("events", i), problems) for i, item in enumerate(spec.events)],
    )
