"""Convergence windows: after each topology event, when every table first matched the truth.

A :class:`Convergence` opens a window at every topology event and looks at the members each
poll: ``at`` is the event's time in the scenario, ``applied_at`` when the runner had applied it
(later than ``at`` on a real clock that fell behind), and ``converged_at`` when every live
member's table started matching networkx's shortest paths over the links that should be up and
stayed so until the window closed; convergence takes ``converged_at - applied_at``. A window the
next topology event cut short before the scenario's bound is ``superseded``, not judged.
Looking also finds the links that should be up and are not, for the runner to dial again.
"""

from __future__ import annotations

from typing import Any

from peerlab.network import Network
from peerlab.oracle import Oracle
from peerlab.truth import Pair, Truth


class Convergence:
    """The convergence windows of one run."""

    def __init__(self, net: Network, truth: Truth, bound: float | None) -> None:
        self.net = net
        self.truth = truth
        self.bound = bound
        self.windows: list[dict[str, Any]] = []
        self.oracle: Oracle = truth.oracle()
        self._open: dict[str, Any] | None = None
        self._version: tuple | None = None
        self._verified: dict[str, tuple] = {}  # member -> state its table was found right in

    def changed(self, label: str, at: float, applied_at: float | None = None) -> list[Pair]:
        """The topology changed: the event of scenario time ``at``, applied at ``applied_at``
        (``at`` if not given). Close the open window, open one; returns the links that should
        be up and are not."""
        self.close()
        self.oracle = self.truth.oracle()
        self._version = None
        self._verified = {}
        self._open = {
            "event": label,
            "at": at,
            "applied_at": at if applied_at is None else round(applied_at, 6),
            "converged_at": None,
            "status": "pending",
        }
        self.windows.append(self._open)
        return self.look()

    def look(self) -> list[Pair]:
        """Check the tables against the truth; returns the links that should be up and are not."""
        window = self._open
        if window is None:
            return []
        version, agrees, missing = self.net.call(self._look)
        if agrees is not None:
            self._version = version
            if agrees and window["converged_at"] is None:
                window["converged_at"] = round(self.net.now, 6)
            elif not agrees:
                window["converged_at"] = None
        return missing

    def _look(self) -> tuple[tuple, bool | None, list[Pair]]:
        """In the members' context: their state, whether their tables agree with the oracle
        (None: unchanged since last looked at), and the links missing."""
        members = self.net.members
        version = tuple(
            (mid, id(m), m.counters.route_computations, m.routes_pending, len(m.neighbours))
            for mid, m in members.items()
        )
        missing = [
            (a, b)
            for a, b in self.truth.current_links()
            if a in members and b in members and b not in members[a].neighbours
        ]
        if version == self._version:
            return version, None, missing
        # a table already found right against this oracle, and not recomputed since, is still
        # right: only members whose table changed are checked again
        verified = self._verified
        for state in version:
            mid, _, _, pending, _ = state
            if verified.get(mid) == state:
                continue
            if pending or not self.oracle.agrees({mid: members[mid].routes}):
                return version, False, missing
            verified[mid] = state
        return version, True, missing

    def close(self, next_at: float | None = None) -> None:
        """End the open window: converged if the tables match at its end; superseded if the
        next topology event (at ``next_at``) came before the network could be judged."""
        window = self._open
        if window is None:
            return
        self._version = None
        self.look()
        bound = self.bound
        if window["converged_at"] is not None:
            window["status"] = "converged"
        elif next_at is not None and (bound is None or next_at - window["at"] < bound):
            window["status"] = "superseded"
        else:
            window["status"] = "not_converged"
        self._open = None
