"""From a parsed scenario document to a validated :class:`~peerlab.scenario.model.Scenario`:
the checks of meaning (unique names, links and events that name known members, in time order
so that joined members count, generator parameters that fit, payloads that fit a frame), the
topology file read, and the warnings. Every problem of the document is reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import UNSET

from peerlab.errors import ConfigError, name_list
from peerlab.member import MemberConfig
from peerlab.scenario.convert import Problems
from peerlab.scenario.document import Document, KeyPath
from peerlab.scenario.events import EVENT_KINDS, EVENTS, MemberPair, distinct_pair
from peerlab.scenario.generators import Generator, generated_links
from peerlab.scenario.model import (
    Event,
    Expect,
    LinkParams,
    LinkSpec,
    Scenario,
    member_settings_config,
)
from peerlab.scenario.payload import check_payloads
from peerlab.scenario.scalars import MemberName, NewMember, names_in
from peerlab.scenario.schema import TOPOLOGY_KEYS, Link, MemberCount, Parsed, ScenarioSpec, parse
from peerlab.scenario.topofile import TopologyFile, file_links, file_members, read_topology_file


def build_scenario(document: Document, data: Any = None) -> Scenario:
    """Validate a parsed scenario: ``document``'s own data, or ``data``, a changed copy of it
    whose errors name the document's file and the lines of the parts it kept. A
    :class:`~peerlab.errors.ScenarioError` holds every problem found."""
    problems = Problems(document)
    parsed = parse(document.data if data is None else data, problems)
    scenario = None if parsed is None else _Build(document, parsed, problems).scenario()
    problems.check()
    assert scenario is not None
    return scenario


class _Build:
    """The checks of meaning of one parsed document, each adding what it finds to
    ``problems``; a part whose structure was wrong is left out of the checks that need it."""

    def __init__(self, document: Document, parsed: Parsed, problems: Problems) -> None:
        self.document = document
        self.parsed = parsed
        self.spec: ScenarioSpec = parsed.spec
        self.problems = problems

    def scenario(self) -> Scenario | None:
        """The scenario, or None if a problem was found."""
        spec = self.spec
        defaults = spec.defaults.over(LinkParams())
        member = spec.member.given()
        config = self._config(member)
        topology = self._topology_kind()
        graph = None
        if topology == "file" and isinstance(spec.topology.file, str):
            graph = read_topology_file(spec.topology.file, self.document.base_dir, self.problems)
        members = self._members(graph)
        links = None
        if topology is not None and members is not None:
            links = self._links(topology, members, defaults, graph)
        events = self._events(members, config)
        self._check_security()
        duration = None if spec.duration is UNSET else float(spec.duration)
        for e in events:
            if duration is not None and e.at > duration:
                self.problems.add(
                    ("events", e.index, "at"),
                    f"{e.at:g}s is after the end of the scenario (duration: {duration:g}s); "
                    "the event would never happen",
                )
        if self.problems or members is None or links is None:
            return None
        return Scenario(
            Path(self.document.source).stem if spec.name is UNSET else str(spec.name),
            spec.description,
            spec.seed,
            defaults,
            tuple(members),
            tuple(links),
            tuple(events),
            self._expect(),
            float(spec.settle),
            duration,
            member,
            self.document.source,
            graph.positions if graph is not None else {},
            tuple(_keepalive_warnings(links, defaults, events, config)),
            spec.security.mode,
            spec.security.tls,
        )

    def _check_security(self) -> None:
        security = self.spec.security
        if security.tls and security.mode != "signed":
            self.problems.add(
                ("security", "tls"),
                "needs mode: signed (TLS certificates come from the network authority)",
            )

    def _config(self, member: dict[str, float]) -> MemberConfig:
        """The members' configuration; the scenario defaults if ``member`` makes none."""
        try:
            return member_settings_config(member)
        except ConfigError as exc:
            if exc.field in member:
                self.problems.add(("member", exc.field), exc.problem)
            else:
                self.problems.add(
                    ("member",),
                    f"{exc.field} {exc.problem} (left at its default; set member.{exc.field} too)",
                )
            return member_settings_config({})

    def _topology_kind(self) -> str | None:
        """Which of ``links``, ``generator`` and ``file`` the topology is given by; None if
        it is not exactly one of them, or that one is malformed."""
        topology = self.spec.topology
        present = [
            k
            for k in TOPOLOGY_KEYS
            if getattr(topology, k) is not UNSET or self.problems.within(("topology", k))
        ]
        if len(present) != 1:
            self.problems.add(("topology",), "expected exactly one of 'links', 'generator', 'file'")
            return None
        (kind,) = present
        return kind if getattr(topology, kind) is not UNSET else None

    def _members(self, graph: TopologyFile | None) -> list[str] | None:
        """The initial members (None if they are not known), each named once."""
        raw = self.spec.members
        if isinstance(raw, MemberCount):
            longest = f"{raw.prefix}{raw.count - 1}"
            try:
                MemberName.parse(longest)
            except ValueError as exc:
                self.problems.add(("members", "prefix"), str(exc))
                return None
            width = len(str(raw.count - 1))
            return [f"{raw.prefix}{i:0{width}d}" for i in range(raw.count)]
        if isinstance(raw, list):
            if not raw:
                self.problems.add(("members",), "expected at least one member")
                return None
            seen: set[str] = set()
            for i, m in enumerate(raw):
                if m in seen:
                    self.problems.add(("members", i), f"duplicate member name {m!r}")
                seen.add(m)
            return [str(m) for m in raw]
        if graph is not None:  # a topology file may name the members itself
            return file_members(graph, self.problems)
        if self.spec.topology.file is UNSET and not self.problems.within(("members",)):
            self.problems.add(
                (), "missing required key 'members' (only a topology file may omit it)"
            )
        return None

    def _links(
        self, kind: str, members: list[str], defaults: LinkParams, graph: TopologyFile | None
    ) -> list[LinkSpec] | None:
        """The links at the start (None if they are not known)."""
        generator = self.spec.topology.generator
        if kind == "generator" and isinstance(generator, Generator):
            return generated_links(generator, members, defaults, self.spec.seed, self.problems)
        if kind == "file":
            return None if graph is None else file_links(graph, members, defaults, self.problems)
        return self._listed_links(members, defaults)

    def _listed_links(self, members: list[str], defaults: LinkParams) -> list[LinkSpec]:
        """The links ``topology.links`` lists, each between known members, each once."""
        known = set(members)
        links: dict[tuple[str, str], LinkSpec] = {}
        for i, item in enumerate(self.parsed.links or []):
            if item is None:
                continue
            path: KeyPath = ("topology", "links", i)
            pair, where, params = (
                (item.between, (*path, "between"), item.over(defaults))
                if isinstance(item, Link)
                else (item, path, defaults)
            )
            if not self._pair(pair, where, known):
                continue
            link = LinkSpec(str(pair[0]), str(pair[1]), params)
            if link.pair in links:
                self.problems.add(path, f"duplicate link {link.a}-{link.b}")
            links[link.pair] = link
        return list(links.values())

    def _pair(self, pair: MemberPair, path: KeyPath, known: set[str]) -> bool:
        """Whether ``pair`` links two different known members (adding what is wrong if not)."""
        before = len(self.problems)
        self._known(pair, path, known)
        for where, reason in distinct_pair(pair):
            self.problems.add((*path, *where), reason)
        return len(self.problems) == before

    def _known(self, value: Any, path: KeyPath, known: set[str] | None) -> None:
        """Check that every member ``value`` names exists, and that those it adds do not."""
        if known is None:
            return
        for where, name in names_in(value):
            if isinstance(name, NewMember):
                if name in known:
                    self.problems.add((*path, *where), f"member {name!r} already exists")
            elif name not in known:
                self.problems.add(
                    (*path, *where), f"unknown member {name!r} (members: {name_list(known)})"
                )

    def _events(self, members: list[str] | None, config: MemberConfig) -> list[Event]:
        """The events, checked in time order so that the members that join count."""
        timed = []
        for i, item in enumerate(self.parsed.events):
            if item is None:
                continue
            kinds = [
                k
                for k in EVENT_KINDS
                if getattr(item, k) is not UNSET or self.problems.within(("events", i, k))
            ]
            # with no action, a key that is not one (reported already) was likely meant as one
            if len(kinds) > 1 or not (kinds or self.problems.within(("events", i))):
                self.problems.add(
                    ("events", i),
                    f"expected exactly one action besides 'at' "
                    f"(one of: {', '.join(EVENT_KINDS)}), got {kinds or 'none'}",
                )
            elif kinds and (value := getattr(item, kinds[0])) is not UNSET:
                timed.append((float(item.at), i, kinds[0], value))
        known = None if members is None else set(members)
        events = []
        for at, i, kind, value in sorted(timed, key=lambda t: (t[0], t[1])):
            path = ("events", i, kind)
            self._known(value, path, known)
            for where, reason in EVENTS[kind].check(value):
                self.problems.add((*path, *where), reason)
            if known is not None:
                known.update(str(n) for _, n in names_in(value) if isinstance(n, NewMember))
            line = self.document.lines.of(("events", i))
            events.append(Event(at, kind, EVENTS[kind].args(value), i, line))
        if known is not None:
            check_payloads(events, known, config, self.problems)
        return events

    def _expect(self) -> Expect:
        raw = self.spec.expect
        delivered = None
        if raw.delivered is not UNSET:
            delivered = 1.0 if raw.delivered == "all" else float(raw.delivered)
        return Expect(
            delivered,
            raw.routes,
            None if raw.converged_within is UNSET else float(raw.converged_within),
            raw.invariants,
        )


def _keepalive_warnings(
    links: list[LinkSpec], defaults: LinkParams, events: list[Event], config: MemberConfig
) -> list[str]:
    """Links slow enough that keepalive may call them dead: a Ping's answer takes a round trip,
    and in the simulator a round trip of a dead timeout or more loses the link."""
    params = {f"{link.a}-{link.b}": link.params for link in links}
    if any(e.kind == "join" for e in events):
        params["links of joining members"] = defaults
    delays = {label: p.latency + p.jitter for label, p in params.items()}
    slow = {label: delay for label, delay in delays.items() if delay >= config.dead_timeout / 2}
    if not slow:
        return []
    worst = max(slow.values())
    return [
        f"{len(slow)} link(s) ({name_list(slow, 4)}) have a one-way latency with jitter of up "
        f"to {worst:g}s, half the dead timeout ({config.dead_timeout:g}s) or more: keepalive "
        f"may declare them dead before a Ping is answered; set member.dead_timeout above "
        f"{2 * worst:g}s"
    ]
