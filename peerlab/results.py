"""RunResult: what a run produced, as a stable JSON contract other tools read."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

from peerlab.collector import cycle_collection_paused
from peerlab.errors import ResultsError, UnknownMember, name_list

SCHEMA_VERSION = 1


@dataclass
class RunResult:
    """The outcome of running one scenario on one backend.

    ``routing_tables`` is ``{member: {destination: {"next_hop", "hops"}}}``; each of ``messages``
    is ``{"id", "src", "dst", "sent_at", "delivered_at", "path", "drop_reason", "reliable",
    "acked_at", "deliveries"}``, one per message sent; each of
    ``convergence`` is ``{"event", "at", "converged_at", "status"}``; each of ``expectations`` is
    ``{"name", "ok", "detail"}``; ``counters`` holds frames and bytes sent by message type.
    ``initial_links`` are the scenario's links at the start, ``views`` each live member's belief
    of the links at the end, ``events`` the scenario's timeline ``{"at", "kind", "label"}``, and
    ``positions`` member coordinates from the topology file, when it has them.
    """

    scenario: str
    backend: str
    seed: int
    members: list[str]
    final_links: list[list[str]]
    routing_tables: dict[str, dict[str, dict[str, Any]]]
    messages: list[dict[str, Any]]
    convergence: list[dict[str, Any]]
    expectations: list[dict[str, Any]]
    counters: dict[str, dict[str, int]]
    duration: float
    wall_time: float
    faults: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    initial_links: list[list[str]] = field(default_factory=list)
    views: dict[str, list[list[str]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, list[float]] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    trace: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether every expectation held."""
        return all(e["ok"] for e in self.expectations)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The messages that arrived."""
        return [m for m in self.messages if m["delivered_at"] is not None]

    def table(self, member: str) -> dict[str, dict[str, Any]]:
        """One member's final routing table; :class:`UnknownMember` if it was not running at
        the end."""
        return self.routing_tables[self.member(member)]

    def member(self, name: str) -> str:
        """``name``, if that member was running at the end; else :class:`UnknownMember` naming
        those that were."""
        if name not in self.routing_tables:
            raise UnknownMember(
                f"no member {name!r} at the end of {self.scenario!r} "
                f"(members: {name_list(self.routing_tables)})"
            )
        return name

    def to_networkx(self):
        """The final ground-truth topology as a networkx graph."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(self.members)
        g.add_edges_from(tuple(link) for link in self.final_links)
        return g

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract as a fresh dict, exactly what reading :meth:`to_json` back gives
        (the trace is not part of it; see ``write_trace``)."""
        with cycle_collection_paused():  # a large run's contract is millions of small objects
            return json.loads(json.dumps(self._contract()))

    def _contract(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trace"}

    def to_json(self) -> str:
        """The JSON contract as text: one line per top-level entry, per member or per item.

        An indented dump would spread every route over four lines; this layout stays readable
        and about 40% smaller for large runs.
        """

        def compact(value: Any) -> str:
            return json.dumps(value, sort_keys=True, separators=(", ", ": "))

        def block(value: Any) -> str:
            if isinstance(value, dict) and value:
                rows = (f"  {json.dumps(k)}: {compact(value[k])}" for k in sorted(value))
                return "{\n" + ",\n".join(rows) + "\n }"
            if isinstance(value, list) and value:
                return "[\n" + ",\n".join(f"  {compact(item)}" for item in value) + "\n ]"
            return compact(value)

        data = self._contract()
        entries = (f" {json.dumps(key)}: {block(data[key])}" for key in sorted(data))
        return "{\n" + ",\n".join(entries) + "\n}"

    def write(self, path: str | Path) -> None:
        """Write the JSON contract to ``path``."""
        Path(path).write_text(self.to_json() + "\n")

    def write_trace(self, path: str | Path) -> None:
        """Write the event trace, one JSON object per line."""
        with open(path, "w") as out:
            for event in self.trace:
                out.write(event.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from its JSON contract; :class:`ResultsError` names what is missing."""
        cls._check_keys(data)
        known = {f.name for f in fields(cls) if f.name != "trace"}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def _check_keys(cls, data: Any) -> None:
        """:class:`ResultsError` if ``data`` is not an object holding every required key."""
        if not isinstance(data, dict):
            raise ResultsError(f"expected a JSON object, got {type(data).__name__}")
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in data and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ResultsError(f"missing keys: {', '.join(missing)}")

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """Read a result written by :meth:`write`, checking every field's type;
        :class:`ResultsError` says why one cannot be read (with the key path of a bad value)."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read results: {exc.strerror}") from None
        try:
            # one typed decode: as fast as json.loads here, and it checks the contract's types
            with cycle_collection_paused():  # a large run's contract is millions of small objects
                return _decode(raw)
        except msgspec.ValidationError as exc:
            try:  # a missing key or two: list them all, where msgspec names the first
                cls._check_keys(json.loads(raw))
                problem = str(exc)
            except ResultsError as keys:
                problem = str(keys)
            raise ResultsError(f"{path}: not a peerlab results file: {problem}") from None
        except msgspec.DecodeError as exc:  # not JSON, or not UTF-8
            raise ResultsError(f"{path}: not a peerlab results file: {exc}") from None


_decode = msgspec.json.Decoder(RunResult).decode
