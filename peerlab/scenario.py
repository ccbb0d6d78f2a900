"""YAML scenarios: a network, what happens to it, and what should hold afterwards.

Loading is strict and happens in two passes, as Shadow's config does: *structure* first (unknown
keys are errors, types are checked, defaults filled in), then *meaning* (unique names, events that
name known members, generator parameters that make sense). Every error is a
:class:`~peerlab.errors.ScenarioError` naming the file, the line, the key path, the bad value and
what was expected. ``scenarios/README.md`` documents every key.
"""

from __future__ import annotations

import importlib.resources
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from peerlab.errors import ConfigError, ScenarioError, name_list
from peerlab.member import MemberConfig
from peerlab.units import parse_bandwidth, parse_duration
from peerlab.wire import HEADER_SIZE, Data, encode_frame, member_id_problem

EVENT_KINDS = (
    "send",
    "traffic",
    "link_down",
    "link_cut",
    "link_up",
    "crash",
    "power_off",
    "restart",
    "join",
    "leave",
    "pause",
    "resume",
    "partition",
    "heal",
)
TOPOLOGY_EVENTS = frozenset(EVENT_KINDS) - {"send", "traffic"}
GENERATORS = (
    "line",
    "ring",
    "star",
    "grid_2d",
    "complete",
    "random_regular",
    "erdos_renyi",
    "barabasi_albert",
    "watts_strogatz",
)
TOP_KEYS = (
    "name",
    "description",
    "seed",
    "defaults",
    "members",
    "topology",
    "events",
    "expect",
    "settle",
    "duration",
    "member",
)
#: Member settings used for scenarios unless the scenario's ``member`` section overrides them:
#: a faster keepalive than the library default, so silent faults show within about a second,
#: and reliable messages retried on the scale of a scenario's links and given up after 3 s.
SCENARIO_MEMBER_DEFAULTS = {
    "keepalive_interval": 0.15,
    "dead_timeout": 0.6,
    "handshake_timeout": 2.0,
    "ack_timeout": 0.25,
    "reliable_deadline": 3.0,
}

MEMBER_KEYS = (
    "keepalive_interval",
    "dead_timeout",
    "handshake_timeout",
    "flood_delay",
    "route_delay",
    "route_hold",
    "default_ttl",
    "max_age",
    "target_degree",
    "ack_timeout",
    "reliable_deadline",
    "reliable_window",
)
#: Member settings that are counts, not durations.
MEMBER_COUNTS = ("default_ttl", "target_degree", "reliable_window")


@dataclass(frozen=True)
class LinkParams:
    """Latency, jitter (seconds), bandwidth (bits/s) and loss of a link."""

    latency: float = 0.005
    jitter: float = 0.0
    bandwidth: float = 100e6
    loss: float = 0.0


@dataclass(frozen=True)
class LinkSpec:
    """One scenario link between two members and its parameters."""

    a: str
    b: str
    params: LinkParams

    @property
    def pair(self) -> tuple[str, str]:
        """The link as a sorted pair."""
        return (self.a, self.b) if self.a < self.b else (self.b, self.a)


@dataclass(frozen=True)
class Event:
    """One timed event: ``kind`` is one of :data:`EVENT_KINDS`, ``args`` its parsed value."""

    at: float
    kind: str
    args: Any
    index: int
    line: int | None = None

    def describe(self) -> str:
        """A short human label, e.g. ``link_down a-b``."""
        a = self.args
        if self.kind in ("link_down", "link_cut", "link_up"):
            return f"{self.kind} {a[0]}-{a[1]}"
        if self.kind in ("crash", "power_off", "restart", "leave", "pause", "resume"):
            return f"{self.kind} {a}"
        if self.kind == "join":
            return f"join {a['member']} -> {','.join(a['connect'])}"
        if self.kind == "partition":
            arrow = " -/-> " if a["one_way"] else " | "
            return "partition " + arrow.join(",".join(g) for g in a["groups"])
        if self.kind == "send":
            return f"send {a['from']}->{a['to']}"
        if self.kind == "traffic":
            return f"traffic x{a['count']}"
        return self.kind


@dataclass(frozen=True)
class Expect:
    """What must hold for the run to pass."""

    delivered: float | None = None  # required delivered ratio (1.0 for "all")
    routes: str | None = None  # "shortest": every table matches networkx at the end
    converged_within: float | None = None  # seconds, after every topology event
    invariants: bool = False  # the checks of peerlab.invariants (what peerlab explore checks)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready for :func:`peerlab.runner.run`."""

    name: str
    description: str
    seed: int
    defaults: LinkParams
    members: tuple[str, ...]
    links: tuple[LinkSpec, ...]
    events: tuple[Event, ...]
    expect: Expect
    settle: float = 2.0
    duration: float | None = None
    member: dict[str, float] = field(default_factory=dict)
    source: str = "<scenario>"
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: what is legal but likely not what was meant, for ``peerlab check`` and the results
    warnings: tuple[str, ...] = ()

    @property
    def end_time(self) -> float:
        """When the run stops: ``duration`` if given, else the last event plus ``settle``."""
        if self.duration is not None:
            return self.duration
        last = max((e.at for e in self.events), default=0.0)
        return last + self.settle

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario with another seed."""
        return replace(self, seed=seed)

    def link_params(self, a: str, b: str) -> LinkParams:
        """Parameters of the scenario link a-b (the defaults if it is not a scenario link)."""
        pair = (a, b) if a < b else (b, a)
        for link in self.links:
            if link.pair == pair:
                return link.params
        return self.defaults


# --- loading ---------------------------------------------------------------------------------


class _Lines:
    """Maps key paths of a YAML document to the line they start on."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    self.lines[(*path, key.value)] = key.start_mark.line + 1
                    self._walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def of(self, path: tuple) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)


def _fmt(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _Checker:
    def __init__(self, source: str, lines: _Lines) -> None:
        self.source = source
        self.lines = lines

    def fail(self, path: tuple, message: str) -> ScenarioError:
        return ScenarioError(
            message, file=self.source, line=self.lines.of(path), path=_fmt(path) or None
        )

    def mapping(
        self, value: Any, path: tuple, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)} {value!r}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key), f"unknown key {key!r} (expected one of: {', '.join(allowed)})"
                )
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing required key {key!r}")
        return value

    def string(self, value: Any, path: tuple) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise self.fail(path, f"expected a non-empty name, got {_kind(value)} {value!r}")
        return str(value)

    def integer(self, value: Any, path: tuple, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)} {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"expected an integer >= {minimum}, got {value}")
        return value

    def number(self, value: Any, path: tuple, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.fail(path, f"expected a number in [{lo}, {hi}], got {value!r}")
        return float(value)

    def duration(self, value: Any, path: tuple) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None

    def bandwidth(self, value: Any, path: tuple) -> float:
        try:
            return parse_bandwidth(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None

    def names(self, value: Any, path: tuple, count: int | None = None) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of member names, got {_kind(value)} {value!r}")
        if count is not None and len(value) != count:
            raise self.fail(path, f"expected exactly {count} member names, got {len(value)}")
        return [self.member(v, (*path, i)) for i, v in enumerate(value)]

    def member(self, value: Any, path: tuple) -> str:
        name = self.string(value, path)
        problem = member_id_problem(name)
        if problem is not None:
            raise self.fail(path, problem)
        return name


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), "a value")


def packaged_names() -> list[str]:
    """The names of the reference scenarios installed with peerlab (``quickstart``, ...)."""
    root = importlib.resources.files("peerlab.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def packaged(name: str) -> Path:
    """The file of the reference scenario ``name`` (``quickstart`` or ``quickstart.yaml``)
    installed with peerlab; :class:`ScenarioError` naming the others if there is none."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem not in packaged_names():
        raise ScenarioError(
            f"no such file, and no packaged scenario {stem!r} "
            f"(packaged: {', '.join(packaged_names())})",
            file=name,
        )
    return Path(str(importlib.resources.files("peerlab.scenarios") / f"{stem}.yaml"))


def load_scenario(source: str | Path, text: str | None = None) -> Scenario:
    """Load and validate a scenario file (or ``text``, labelled ``source`` in messages).

    A bare name that is not a file (``quickstart``) names a scenario packaged with peerlab.
    """
    return build_scenario(read_document(source, text))


@dataclass(frozen=True)
class Document:
    """A scenario file parsed as YAML but not yet validated: its ``data``, a ``check`` that
    makes errors naming the file, line and key path, and the folder its relative paths start
    from."""

    data: Any
    check: _Checker
    base_dir: Path


def read_document(source: str | Path, text: str | None = None) -> Document:
    """Read and parse a scenario file (or ``text``, labelled ``source`` in messages), as
    :func:`load_scenario` does, without validating it."""
    path = Path(source)
    if text is None and not path.exists() and path.parent == Path("."):
        path = packaged(path.name)
    label = str(source)
    if text is None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario: {exc.strerror}", file=label) from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"invalid YAML: {problem}", file=label, line=mark.line + 1 if mark else None
        ) from None
    return Document(data, _Checker(label, _Lines(node)), path.parent)


def build_scenario(document: Document, data: Any = None) -> Scenario:
    """Validate a parsed scenario: ``document``'s own data, or ``data``, a changed copy of it
    whose errors name the document's file and the lines of the parts it kept."""
    return _build(document.data if data is None else data, document.check, document.base_dir)


def _link_params(check: _Checker, raw: dict, path: tuple, base: LinkParams) -> LinkParams:
    out = base
    if "latency" in raw:
        out = replace(out, latency=check.duration(raw["latency"], (*path, "latency")))
    if "jitter" in raw:
        out = replace(out, jitter=check.duration(raw["jitter"], (*path, "jitter")))
    if "bandwidth" in raw:
        out = replace(out, bandwidth=check.bandwidth(raw["bandwidth"], (*path, "bandwidth")))
    if "loss" in raw:
        out = replace(out, loss=check.number(raw["loss"], (*path, "loss"), 0.0, 0.99))
    return out


LINK_KEYS = ("latency", "jitter", "bandwidth", "loss")


def _build(data: Any, check: _Checker, base_dir: Path) -> Scenario:
    # ---- pass 1: structure
    doc = check.mapping(data if data is not None else {}, (), TOP_KEYS, ("topology",))
    name = check.string(doc.get("name", Path(check.source).stem), ("name",))
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise check.fail(("description",), f"expected text, got {_kind(description)}")
    seed = check.integer(doc.get("seed", 0), ("seed",))
    defaults = _link_params(
        check,
        check.mapping(doc.get("defaults", {}), ("defaults",), LINK_KEYS),
        ("defaults",),
        LinkParams(),
    )
    settle = check.duration(doc.get("settle", 2.0), ("settle",))
    duration = check.duration(doc["duration"], ("duration",)) if "duration" in doc else None
    member_cfg = check.mapping(doc.get("member", {}), ("member",), MEMBER_KEYS)
    member: dict[str, float] = {}
    for key, value in member_cfg.items():
        if key in MEMBER_COUNTS:
            member[key] = check.integer(value, ("member", key), 0)
        else:
            member[key] = check.duration(value, ("member", key))
    try:
        config = _member_config(member)
    except ConfigError as exc:
        if exc.field in member:
            raise check.fail(("member", exc.field), exc.problem) from None
        raise check.fail(
            ("member",),
            f"{exc.field} {exc.problem} (left at its default; set member.{exc.field} too)",
        ) from None

    topo = check.mapping(doc["topology"], ("topology",), ("links", "generator", "file"))
    if len(topo) != 1:
        raise check.fail(("topology",), "expected exactly one of 'links', 'generator', 'file'")
    ((topo_kind, topo_value),) = topo.items()
    graph = None
    if topo_kind == "file":
        graph = _read_topology_file(check, topo_value, base_dir)
    if "members" in doc:
        members = _members(check, doc["members"])
    elif graph is not None:
        members = graph[0]  # a topology file may name the members itself
    else:
        raise check.fail((), "missing required key 'members' (only a topology file may omit it)")

    # ---- pass 2: meaning
    seen: set[str] = set()
    for i, m in enumerate(members):
        if m in seen:
            raise check.fail(("members", i), f"duplicate member name {m!r}")
        seen.add(m)
    rng = random.Random(seed)
    if topo_kind == "links":
        links = _explicit_links(check, topo_value, members, defaults)
    elif topo_kind == "generator":
        links = _generated_links(check, topo_value, members, defaults, rng)
    else:
        assert graph is not None
        links = _file_links(check, graph, members, defaults)
    events = _events(check, doc.get("events", []), members, config)
    late = [e for e in events if duration is not None and e.at > duration]
    if late:
        first = min(late, key=lambda e: e.index)
        raise check.fail(
            ("events", first.index, "at"),
            f"{first.at:g}s is after the end of the scenario (duration: {duration:g}s); "
            "the event would never happen",
        )
    expect = _expect(check, doc.get("expect", {}))
    return Scenario(
        name,
        description,
        seed,
        defaults,
        tuple(members),
        tuple(links),
        tuple(events),
        expect,
        settle,
        duration,
        member,
        check.source,
        graph[2] if graph is not None else {},
        tuple(_keepalive_warnings(links, defaults, events, config)),
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


def member_config(scenario: Scenario) -> MemberConfig:
    """The MemberConfig a scenario's members run with."""
    return _member_config(scenario.member)


def _member_config(member: dict[str, float]) -> MemberConfig:
    """The scenario defaults with a scenario's ``member`` settings over them."""
    return MemberConfig(**{**SCENARIO_MEMBER_DEFAULTS, **member})


def _members(check: _Checker, raw: Any) -> list[str]:
    path = ("members",)
    if isinstance(raw, dict):
        spec = check.mapping(raw, path, ("count", "prefix"), ("count",))
        count = check.integer(spec["count"], (*path, "count"), 1)
        prefix = check.string(spec.get("prefix", "m"), (*path, "prefix"))
        width = len(str(count - 1))
        check.member(f"{prefix}{count - 1}", (*path, "prefix"))  # the longest name made
        return [f"{prefix}{i:0{width}d}" for i in range(count)]
    names = check.names(raw, path)
    if not names:
        raise check.fail(path, "expected at least one member")
    return names


def _known(check: _Checker, name: str, path: tuple, known: list[str] | set[str]) -> str:
    if name not in known:
        raise check.fail(path, f"unknown member {name!r} (members: {name_list(known)})")
    return name


def _pair(check: _Checker, raw: Any, path: tuple, known) -> tuple[str, str]:
    a, b = check.names(raw, path, 2)
    _known(check, a, (*path, 0), known)
    _known(check, b, (*path, 1), known)
    if a == b:
        raise check.fail(path, f"a link needs two different members, got [{a}, {b}]")
    return a, b


def _explicit_links(check, raw, members, defaults) -> list[LinkSpec]:
    path = ("topology", "links")
    if not isinstance(raw, list):
        raise check.fail(path, f"expected a list of links, got {_kind(raw)}")
    links: dict[tuple[str, str], LinkSpec] = {}
    for i, item in enumerate(raw):
        p = (*path, i)
        if isinstance(item, dict):
            spec = check.mapping(item, p, ("between", *LINK_KEYS), ("between",))
            a, b = _pair(check, spec["between"], (*p, "between"), members)
            params = _link_params(check, spec, p, defaults)
        else:
            a, b = _pair(check, item, p, members)
            params = defaults
        link = LinkSpec(a, b, params)
        if link.pair in links:
            raise check.fail(p, f"duplicate link {a}-{b}")
        links[link.pair] = link
    return list(links.values())


def _generated_links(check, raw, members, defaults, rng) -> list[LinkSpec]:
    import networkx as nx

    path = ("topology", "generator")
    spec = check.mapping(
        raw, path, ("kind", "degree", "p", "m", "k", "rows", "cols", "seed"), ("kind",)
    )
    kind = spec["kind"]
    if kind not in GENERATORS:
        raise check.fail(
            (*path, "kind"),
            f"unknown generator {kind!r} (expected one of: {', '.join(GENERATORS)})",
        )
    n = len(members)
    seed = check.integer(spec.get("seed", rng.randrange(2**31)), (*path, "seed"))

    def need(key: str, lo: float, hi: float, integer: bool = True):
        if key not in spec:
            raise check.fail(path, f"generator {kind!r} needs {key!r}")
        if integer:
            value = check.integer(spec[key], (*path, key))
            if not lo <= value <= hi:
                raise check.fail(
                    (*path, key), f"{key} must be in [{lo}, {hi}] for {n} members, got {value}"
                )
            return value
        return check.number(spec[key], (*path, key), lo, hi)

    extra = set(spec) - {"kind", "seed"}
    allowed = {
        "line": set(),
        "ring": set(),
        "star": set(),
        "complete": set(),
        "grid_2d": {"rows", "cols"},
        "random_regular": {"degree"},
        "erdos_renyi": {"p"},
        "barabasi_albert": {"m"},
        "watts_strogatz": {"k", "p"},
    }[kind]
    if unexpected := sorted(extra - allowed):
        key = unexpected[0]
        raise check.fail(
            (*path, key),
            f"generator {kind!r} takes no {key!r} "
            f"(it takes: {', '.join(sorted(allowed)) or 'nothing'})",
        )
    if kind == "line":
        g = nx.path_graph(n)
    elif kind == "ring":
        if n < 3:
            raise check.fail(path, f"a ring needs at least 3 members, got {n}")
        g = nx.cycle_graph(n)
    elif kind == "star":
        g = nx.star_graph(n - 1)
    elif kind == "complete":
        g = nx.complete_graph(n)
    elif kind == "grid_2d":
        rows, cols = need("rows", 1, n), need("cols", 1, n)
        if rows * cols != n:
            raise check.fail(path, f"grid {rows}x{cols} has {rows * cols} places for {n} members")
        g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols), ordering="sorted")
    elif kind == "random_regular":
        degree = need("degree", 0, n - 1)
        if degree * n % 2:
            raise check.fail(
                (*path, "degree"), f"degree x members must be even, got {degree} x {n}"
            )
        g = nx.random_regular_graph(degree, n, seed=seed)
    elif kind == "erdos_renyi":
        g = nx.gnp_random_graph(n, need("p", 0.0, 1.0, integer=False), seed=seed)
    elif kind == "barabasi_albert":
        g = nx.barabasi_albert_graph(n, need("m", 1, n - 1), seed=seed)
    else:
        g = nx.watts_strogatz_graph(
            n, need("k", 1, n - 1), need("p", 0.0, 1.0, integer=False), seed=seed
        )
    return [LinkSpec(members[u], members[v], defaults) for u, v in sorted(g.edges)]


def _read_topology_file(
    check: _Checker, raw: Any, base_dir: Path
) -> tuple[list[str], list[tuple[str, str, dict]], dict[str, tuple[float, float]]]:
    """Member names, edges (with attributes) and node positions (when every node has one) of a
    GML, GraphML or edge-list file.

    GML nodes are named by their ``label`` (as the Internet Topology Zoo writes them); a label
    that repeats gets its node id appended, so every member name is unique.
    """
    import networkx as nx

    path = ("topology", "file")
    name = check.string(raw, path)
    file = (base_dir / name).resolve()
    try:
        if file.suffix == ".gml":
            g = nx.read_gml(file, label="id")
            labels = [str(g.nodes[n].get("label", n)) for n in g]
            names = {
                n: label if labels.count(label) == 1 else f"{label}-{n}"
                for n, label in zip(g, labels, strict=True)
            }
            g = nx.relabel_nodes(g, names)
        elif file.suffix == ".graphml":
            g = nx.read_graphml(file)
        elif file.suffix in (".txt", ".edges", ".edgelist", ".csv"):
            g = nx.read_edgelist(
                file, data=[("latency", str)], delimiter="," if file.suffix == ".csv" else None
            )
        else:
            raise check.fail(
                path,
                f"unknown topology file type {file.suffix!r} "
                "(expected .gml, .graphml, .txt/.edges/.edgelist or .csv)",
            )
    except OSError as exc:
        raise check.fail(path, f"cannot read topology file {str(file)!r}: {exc.strerror}") from None
    except (nx.NetworkXError, ValueError, TypeError) as exc:
        raise check.fail(path, f"cannot parse topology file {str(file)!r}: {exc}") from None
    edges = sorted(((str(u), str(v), a) for u, v, a in g.edges(data=True)), key=lambda e: e[:2])
    return [check.member(str(n), path) for n in g], edges, _positions(g)


def _positions(g) -> dict[str, tuple[float, float]]:
    """Node positions a file gives: Longitude/Latitude (Topology Zoo) or x/y; else none."""
    out = {}
    for n, attrs in g.nodes(data=True):
        for kx, ky in (("Longitude", "Latitude"), ("x", "y")):
            try:
                out[str(n)] = (float(attrs[kx]), float(attrs[ky]))
                break
            except (KeyError, TypeError, ValueError):
                continue
    return out if len(out) == len(g) else {}


def _file_links(check, graph, members, defaults) -> list[LinkSpec]:
    path = ("topology", "file")
    known = set(members)
    links = []
    for a, b, attrs in graph[1]:
        for m in (a, b):
            if m not in known:
                raise check.fail(path, f"file names member {m!r} that is not in 'members'")
        if a == b:
            continue
        params = defaults
        if "latency" in attrs:
            params = replace(params, latency=check.duration(attrs["latency"], path))
        links.append(LinkSpec(a, b, params))
    return links


def _events(check: _Checker, raw: Any, members: list[str], config: MemberConfig) -> list[Event]:
    path = ("events",)
    if not isinstance(raw, list):
        raise check.fail(path, f"expected a list of events, got {_kind(raw)}")
    known = set(members)
    events = []
    parsed = []
    for i, item in enumerate(raw):
        p = (*path, i)
        spec = check.mapping(item, p, ("at", *EVENT_KINDS), ("at",))
        at = check.duration(spec["at"], (*p, "at"))
        kinds = [k for k in spec if k != "at"]
        if len(kinds) != 1:
            raise check.fail(
                p,
                f"expected exactly one action besides 'at' "
                f"(one of: {', '.join(EVENT_KINDS)}), got {kinds or 'none'}",
            )
        parsed.append((at, i, kinds[0], spec[kinds[0]], p))
    # meaning, in time order so that joined members are known to later events
    for at, i, kind, value, p in sorted(parsed, key=lambda x: (x[0], x[1])):
        q = (*p, kind)
        if kind == "send":
            spec = check.mapping(value, q, ("from", "to", "payload", "reliable"), ("from", "to"))
            args = {
                "from": _known(
                    check, check.string(spec["from"], (*q, "from")), (*q, "from"), known
                ),
                "to": _known(check, check.string(spec["to"], (*q, "to")), (*q, "to"), known),
                "payload": str(spec.get("payload", "")),
                "reliable": bool(spec.get("reliable", False)),
            }
        elif kind == "traffic":
            spec = check.mapping(value, q, ("count", "size", "reliable"), ("count",))
            args = {
                "count": check.integer(spec["count"], (*q, "count"), 1),
                "size": check.integer(spec.get("size", 100), (*q, "size"), 0),
                "reliable": bool(spec.get("reliable", False)),
            }
        elif kind in ("link_down", "link_cut", "link_up"):
            args = _pair(check, value, q, known)
        elif kind in ("crash", "power_off", "restart", "leave", "pause", "resume"):
            args = _known(check, check.string(value, q), q, known)
        elif kind == "join":
            spec = check.mapping(value, q, ("member", "connect"), ("member", "connect"))
            new = check.member(spec["member"], (*q, "member"))
            if new in known:
                raise check.fail((*q, "member"), f"member {new!r} already exists")
            connect = check.names(spec["connect"], (*q, "connect"))
            for j, c in enumerate(connect):
                _known(check, c, (*q, "connect", j), known)
            known.add(new)
            args = {"member": new, "connect": connect}
        elif kind == "partition":
            one_way = False
            gq = q
            if isinstance(value, dict):
                spec = check.mapping(value, q, ("groups", "one_way"), ("groups",))
                value, gq = spec["groups"], (*q, "groups")
                one_way = spec.get("one_way", False)
                if not isinstance(one_way, bool):
                    raise check.fail((*q, "one_way"), f"expected true or false, got {one_way!r}")
            if not isinstance(value, list) or len(value) < 2:
                raise check.fail(gq, "expected a list of at least two groups of members")
            groups = []
            placed: set[str] = set()
            for j, group in enumerate(value):
                names = check.names(group, (*gq, j))
                for k, m in enumerate(names):
                    _known(check, m, (*gq, j, k), known)
                    if m in placed:
                        raise check.fail((*gq, j, k), f"member {m!r} is in two groups")
                    placed.add(m)
                groups.append(names)
            args = {"groups": groups, "one_way": one_way}
        else:  # heal
            if value is not True:
                raise check.fail(q, f"expected 'heal: true', got {value!r}")
            args = True
        events.append(Event(at, kind, args, i, check.lines.of(p)))
    _check_payloads(check, events, known, config)
    return events


def payload_limit(names: set[str] | list[str], config: MemberConfig) -> int:
    """The largest payload a scenario with these member names can send: its Data frame must
    still fit on the longest path, after every relay has added its id to the recorded path."""
    longest = max(names, key=len)
    # the largest frame a message here can need: the longest ids, a path through every member
    # (a shortest path repeats none), a message count as large as any, a bin32 payload
    probe_size = 1 << 16
    path = [longest] * min(config.default_ttl, len(names))
    probe = Data(
        f"{longest}:{2**40}", longest, longest, config.default_ttl, path, bytes(probe_size)
    )
    overhead = len(encode_frame(probe, 1 << 30)) - HEADER_SIZE - probe_size
    return config.max_frame_size - overhead


def _check_payloads(
    check: _Checker, events: list[Event], names: set[str], config: MemberConfig
) -> None:
    """Every payload must fit in one frame all the way to its destination."""
    sizes = [
        (e, "payload", len(e.args["payload"].encode()))
        if e.kind == "send"
        else (e, "size", e.args["size"])
        for e in events
        if e.kind in ("send", "traffic")
    ]
    if not sizes:
        return
    limit = payload_limit(names, config)
    for e, key, size in sizes:
        if size > limit:
            raise check.fail(
                ("events", e.index, e.kind, key),
                f"a {size:,}-byte payload does not fit in one frame on this network's longest "
                f"path (at most {limit:,} bytes; frames are at most {config.max_frame_size:,})",
            )


def _expect(check: _Checker, raw: Any) -> Expect:
    path = ("expect",)
    spec = check.mapping(raw, path, ("delivered", "routes", "converged_within", "invariants"))
    delivered = None
    if "delivered" in spec:
        value = spec["delivered"]
        delivered = 1.0 if value == "all" else check.number(value, (*path, "delivered"), 0.0, 1.0)
    routes = spec.get("routes")
    if routes is not None and routes != "shortest":
        raise check.fail((*path, "routes"), f"expected 'shortest', got {routes!r}")
    within = None
    if "converged_within" in spec:
        within = check.duration(spec["converged_within"], (*path, "converged_within"))
    invariants = spec.get("invariants", False)
    if not isinstance(invariants, bool):
        raise check.fail((*path, "invariants"), f"expected true or false, got {invariants!r}")
    return Expect(delivered, routes, within, invariants)
