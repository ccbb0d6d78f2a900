"""Topology files (GML, GraphML, edge lists): members, links and positions read from a file
named by ``topology.file``, once the scenario itself has been parsed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from peerlab.scenario.convert import Problems
from peerlab.scenario.model import LinkParams, LinkSpec
from peerlab.scenario.scalars import MemberName
from peerlab.units import parse_duration

PATH = ("topology", "file")
#: The file name endings read, and how.
SUFFIXES = ".gml, .graphml, .txt/.edges/.edgelist or .csv"


@dataclass(frozen=True)
class TopologyFile:
    """What a topology file holds: member names, edges with their attributes, and node
    positions (empty unless every node has one)."""

    names: list[str]
    edges: list[tuple[str, str, dict[str, Any]]]
    positions: dict[str, tuple[float, float]]


def read_topology_file(name: str, base_dir: Path, problems: Problems) -> TopologyFile | None:
    """The topology file ``name`` (relative to ``base_dir``), or None after adding to
    ``problems`` why it cannot be read.

    GML nodes are named by their ``label`` (as the Internet Topology Zoo writes them); a label
    that repeats gets its node id appended, so every member name is unique.
    """
    import networkx as nx

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
            problems.add(PATH, f"unknown topology file type {file.suffix!r} (expected {SUFFIXES})")
            return None
    except OSError as exc:
        problems.add(PATH, f"cannot read topology file {str(file)!r}: {exc.strerror}")
        return None
    except (nx.NetworkXError, ValueError, TypeError) as exc:
        problems.add(PATH, f"cannot parse topology file {str(file)!r}: {exc}")
        return None
    edges = sorted(((str(u), str(v), a) for u, v, a in g.edges(data=True)), key=lambda e: e[:2])
    return TopologyFile([str(n) for n in g], edges, _positions(g))


def _positions(g: Any) -> dict[str, tuple[float, float]]:
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


def file_members(graph: TopologyFile, problems: Problems) -> list[str] | None:
    """The file's nodes as the scenario's members, or None after adding to ``problems`` the
    names that cannot be member ids."""
    before = len(problems)
    for name in graph.names:
        try:
            MemberName.parse(name)
        except ValueError as exc:
            problems.add(PATH, str(exc))
    return graph.names if len(problems) == before else None


def file_links(
    graph: TopologyFile, members: list[str], defaults: LinkParams, problems: Problems
) -> list[LinkSpec]:
    """The file's edges as links with the ``defaults`` (an edge's ``latency`` its own), after
    adding to ``problems`` edges naming others than ``members`` and unreadable latencies."""
    known = set(members)
    links = []
    for a, b, attrs in graph.edges:
        for m in (a, b):
            if m not in known:
                problems.add(PATH, f"file names member {m!r} that is not in 'members'")
        if a == b:
            continue
        params = defaults
        if "latency" in attrs:
            try:
                params = replace(params, latency=parse_duration(attrs["latency"]))
            except ValueError as exc:
                problems.add(PATH, str(exc))
        links.append(LinkSpec(a, b, params))
    return links
