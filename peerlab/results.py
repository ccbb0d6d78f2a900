"""RunResult: what a run produced, as a stable JSON contract other tools read."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import msgspec

from peerlab import trace as ev
from peerlab.collector import cycle_collection_paused
from peerlab.errors import ResultsError, UnknownMember, name_list
from peerlab.timeline import Pair, Timeline
from peerlab.trace import TraceEvent

#: The version of the results' JSON contract; a file of another version is refused on reading.
#: 2: ``timeline`` added. 3: ``timing`` and ``timing_ok`` added; convergence windows and events
#: carry ``applied_at``.
SCHEMA_VERSION = 3


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
    ``positions`` member coordinates from the topology file, when it has them. ``timeline``
    is the run's story over time (see :mod:`peerlab.timeline`), read through :meth:`links_at`,
    :meth:`members_at`, :meth:`table_at` and :meth:`view_at`. ``timing_ok`` is false when the
    run fell behind its schedule by more than the runner's tolerance (a real clock that could not
    keep up): its latencies and convergence times then say more about the machine than the
    protocol; ``timing`` holds how far behind it fell (``event_lag``, ``poll_lag``, ``loop_lag``,
    seconds) and ``worst``, what fell furthest. ``link_delays`` holds, by link ``"a-b"`` between
    neighbours at the end, half the shortest keepalive round trip measured on it (seconds): what
    a replay in the simulator takes as the link's latency.
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
    timeline: dict[str, Any] | None = None
    timing_ok: bool = True
    timing: dict[str, Any] = field(default_factory=dict)
    link_delays: dict[str, float] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    trace: list[Any] = field(default_factory=list, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"<RunResult {self.scenario!r} on {self.backend} (seed {self.seed}): "
            f"{len(self.members)} members, {len(self.final_links)} links, "
            f"{len(self.delivered)}/{len(self.messages)} delivered, "
            f"{'ok' if self.ok else 'expectations FAILED'}>"
        )

    def _repr_html_(self) -> str:
        from peerlab.viewer import inline_html

        return inline_html(self)

    def show(self) -> Any:
        """The interactive viewer of this run, for a Jupyter notebook to display inline."""
        from IPython.display import HTML

        return HTML(self._repr_html_())

    @cached_property
    def history(self) -> Timeline:
        """The run's timeline; :class:`ResultsError` if these results hold none."""
        if self.timeline is None:
            raise ResultsError(
                f"the results of {self.scenario!r} hold no timeline, so nothing can be said of "
                "any instant but the end; run the scenario again with this peerlab"
            )
        return Timeline(self.timeline, self.scenario)

    def members_at(self, t: float) -> list[str]:
        """The members running at scenario time ``t``."""
        return self.history.members_at(t)

    def links_at(self, t: float) -> list[Pair]:
        """The links established at scenario time ``t``, as sorted pairs."""
        return self.history.links_at(t)

    def table_at(self, member: str, t: float) -> dict[str, dict[str, Any]]:
        """``member``'s routing table at scenario time ``t`` (shaped as :meth:`table`);
        :class:`UnknownMember` if it was not running then."""
        return self.history.table_at(member, t)

    def view_at(self, member: str, t: float) -> set[Pair]:
        """The links ``member`` believed in at scenario time ``t``; :class:`UnknownMember` if it
        was not running then, :class:`ResultsError` if views were not recorded."""
        return self.history.view_at(member, t)

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

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("history", None)  # a cache, rebuilt on demand
        return state

    def to_json(self) -> str:
        """The JSON contract as text: one line per top-level entry, per member or per item.

        An indented dump would spread every route over four lines; this layout stays readable
        and much smaller for large runs.
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

    def write_trace(self, path: str | Path | TextIO) -> None:
        """Write the event trace, one JSON object per line, to a file or a text stream."""
        if not isinstance(path, str | Path):
            for event in self.trace:
                path.write(event.to_json() + "\n")
            return
        with open(path, "w") as out:
            self.write_trace(out)

    @classmethod
    def from_trace(
        cls,
        trace: Sequence[TraceEvent],
        /,
        *,
        time: Callable[[float], float],
        ended: Collection[tuple[str, int]],
        **contract: Any,
    ) -> RunResult:
        """A result whose ``messages`` are read off a run's ``trace`` (see
        :func:`messages_of`), ``contract`` giving the rest of it."""
        return cls(messages=messages_of(trace, time, ended), trace=list(trace), **contract)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from its JSON contract; :class:`ResultsError` names what is missing."""
        cls._check_keys(data)
        _check_schema(data.get("schema"), "these results")
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
            found = _decode_schema(raw).schema
            if found is not None:  # without one, missing keys are the likelier story: below
                _check_schema(found, str(path))
            # one typed decode: as fast as json.loads here, and it checks the contract's types
            with cycle_collection_paused():  # a large run's contract is millions of small objects
                result = _decode(raw)
        except msgspec.ValidationError as exc:
            try:  # a missing key or two: list them all, where msgspec names the first
                cls._check_keys(json.loads(raw))
                problem = str(exc)
            except ResultsError as keys:
                problem = str(keys)
            raise ResultsError(f"{path}: not a peerlab results file: {problem}") from None
        except msgspec.DecodeError as exc:  # not JSON, or not UTF-8
            raise ResultsError(f"{path}: not a peerlab results file: {exc}") from None
        _check_schema(found, str(path))
        return result


_decode = msgspec.json.Decoder(RunResult).decode


def convergence_time(window: dict[str, Any]) -> float | None:
    """How long a convergence window took, from when its event was applied (None: it did not
    converge)."""
    if window["converged_at"] is None:
        return None
    return window["converged_at"] - window.get("applied_at", window["at"])


def messages_of(
    events: Sequence[TraceEvent],
    time: Callable[[float], float],
    ended: Collection[tuple[str, int]],
) -> list[dict[str, Any]]:
    """One record per message sent, in the order sent, with what became of it, from the
    trace's ``send``, ``deliver``, ``drop`` and ``acked`` events (times converted with
    ``time``). A message neither delivered nor reported dropped is ``sender_stopped`` if its
    sender's life is in ``ended`` (``(member, incarnation)`` pairs), ``unsettled`` if reliable
    and not acknowledged, else ``lost``."""
    messages: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e.time):
        f = e.fields
        m = messages.get(f["msg_id"]) if "msg_id" in f else None
        if e.kind == ev.SEND:
            messages[f["msg_id"]] = {
                "id": f["msg_id"],
                "src": f["src"],
                "dst": f["dst"],
                "sent_at": round(time(e.time), 6),
                "delivered_at": None,
                "path": [f["src"]],
                "drop_reason": None,
                "reliable": f.get("reliable", False),
                "acked_at": None,
                "deliveries": 0,
            }
        elif m is None:
            continue
        elif e.kind == ev.DELIVER:
            m["deliveries"] += 1
            if m["delivered_at"] is None:
                m.update(delivered_at=round(time(e.time), 6), path=list(f["path"]))
                m["drop_reason"] = None
        elif e.kind == ev.DROP and not f.get("ack"):
            if m["delivered_at"] is None:  # the last word: a relay's drop, then the sender's
                m.update(drop_reason=f["reason"], path=list(f.get("path", m["path"])))
        elif e.kind == ev.ACKED:
            m["acked_at"] = round(time(e.time), 6)
    out = list(messages.values())
    for m in out:
        if m["delivered_at"] is None and m["drop_reason"] is None:
            src, life, _ = m["id"].rsplit(":", 2)
            if life.isdigit() and (src, int(life)) in ended:
                m["drop_reason"] = "sender_stopped"
            else:
                m["drop_reason"] = (
                    "unsettled" if m["reliable"] and m["acked_at"] is None else "lost"
                )
    return out


class _Schema(msgspec.Struct):
    schema: Any = None


# reads only the version: every other key is skipped without building anything
_decode_schema = msgspec.json.Decoder(_Schema).decode


def _check_schema(found: Any, where: str) -> None:
    """:class:`ResultsError` unless ``found`` is the schema version this peerlab reads."""
    if found != SCHEMA_VERSION:
        written = "no schema version" if found is None else f"schema version {found!r}"
        raise ResultsError(
            f"{where}: results with {written}; this peerlab reads version {SCHEMA_VERSION} "
            "(they were written by another peerlab: run the scenario again to rewrite them)"
        )
